// Gloo all_reduce_sum / all_gather / broadcast_bytes latency between real
// processes over loopback (issue #9). Usage:
//   collectives_bench [tp=2] [iterations=200]
// Forks tp ranks that rendezvous through a file store in /tmp; rank 0 prints
// the median and p90 time per call for each size. Results: docs/performance.md.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "runtime/dist/gloo_communicator.h"

namespace {

using llmctl::dist::Communicator;

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

template <typename F>
void measure(Communicator& comm, const std::string& what, int iterations, F&& call) {
  for (int i = 0; i < 10; ++i) call();
  std::vector<double> us;
  for (int i = 0; i < iterations; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    if (!call()) std::exit(1);
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  if (comm.rank() == 0) {
    std::printf("tp=%d %-34s median %9.1f us   p90 %9.1f us\n", comm.world_size(), what.c_str(), percentile(us, 0.5),
                percentile(us, 0.9));
    std::fflush(stdout);
  }
}

int run_rank(const std::string& dir, int rank, int tp, int iterations) {
  auto store = llmctl::dist::open_file_store(dir);
  if (!store.is_ok()) return 1;
  llmctl::dist::GlooOptions options;
  options.rank = rank;
  options.world_size = tp;
  options.interface = "lo";
  auto comm = llmctl::dist::connect_gloo(options, **store);
  if (!comm.is_ok()) {
    std::fprintf(stderr, "%s\n", comm.status().to_string().c_str());
    return 1;
  }
  for (int64_t count : {int64_t{4096}, int64_t{65536}, int64_t{1} << 20}) {
    std::vector<float> data(static_cast<std::size_t>(count), 1.0f);
    measure(**comm, fmt::format("all_reduce_sum {} floats", count), iterations,
            [&] { return (*comm)->all_reduce_sum(data.data(), count).is_ok(); });
  }
  std::vector<float> in(4096, 1.0f), out(4096 * static_cast<std::size_t>(tp));
  measure(**comm, "all_gather 4096 floats/rank", iterations,
          [&] { return (*comm)->all_gather(in.data(), out.data(), 4096).is_ok(); });
  std::string batch(2048, 'b');
  measure(**comm, "broadcast_bytes 2 KiB", iterations, [&] {
    std::string bytes = rank == 0 ? batch : std::string();
    return (*comm)->broadcast_bytes(bytes, 0).is_ok();
  });
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int tp = argc > 1 ? std::atoi(argv[1]) : 2;
  int iterations = argc > 2 ? std::atoi(argv[2]) : 200;
  std::string dir = fmt::format("/tmp/llmctl-collectives-bench-{}", ::getpid());
  std::filesystem::remove_all(dir);
  std::vector<pid_t> pids;
  for (int r = 0; r < tp; ++r) {
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(run_rank(dir, r, tp, iterations));
    pids.push_back(pid);
  }
  int failed = 0;
  for (pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
  }
  std::filesystem::remove_all(dir);
  return failed == 0 ? 0 : 1;
}
