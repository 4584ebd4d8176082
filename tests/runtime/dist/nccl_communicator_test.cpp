// NCCL between real processes, one per visible GPU (label gpu): exact sums
// and gathers against values computed here, bytes broadcast from the last
// rank, and a rank killed mid-stream named by the others within the time-out.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <cuda_runtime.h>
#include <doctest/doctest.h>
#include <fmt/format.h>

#include "rank_processes.h"
#include "runtime/dist/nccl_communicator.h"

namespace llmctl::dist {
namespace {

using namespace std::chrono_literals;

// The parent must not touch CUDA before forking; a child counts the GPUs.
int visible_gpus() {
  auto outcome = testing::run_ranks(
      {0},
      [](int) {
        int n = 0;
        if (cudaGetDeviceCount(&n) != cudaSuccess) n = 0;
        return std::to_string(n);
      },
      30s);
  return outcome[0].report.empty() ? 0 : std::stoi(outcome[0].report);
}

std::vector<float> integer_data(int rank, std::size_t count, unsigned seed) {
  std::mt19937 rng(seed * 131 + static_cast<unsigned>(rank));
  std::uniform_int_distribution<int> dist(-1000, 1000);
  std::vector<float> v(count);
  for (auto& x : v) x = static_cast<float>(dist(rng));
  return v;
}

std::string fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / fmt::format("llmctl-nccl-{}-{}", name, ::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

Result<std::unique_ptr<NcclCommunicator>> join(const std::string& dir, int rank, int world_size,
                                               std::chrono::milliseconds timeout) {
  auto store = open_file_store(dir);
  if (!store.is_ok()) return store.status();
  NcclOptions options;
  options.rank = rank;
  options.world_size = world_size;
  options.device = rank;
  options.timeout = timeout;
  return connect_nccl(options, *store->release());
}

std::string check_rank(const std::string& dir, int rank, int world_size) {
  auto comm = join(dir, rank, world_size, 60s);
  if (!comm.is_ok()) return comm.status().to_string();
  unsigned seed = 11;
  for (std::size_t count : {std::size_t{1}, std::size_t{4097}, std::size_t{1} << 20}) {
    ++seed;
    std::vector<float> host = integer_data(rank, count, seed);
    float* dev = nullptr;
    float* gathered = nullptr;
    if (cudaMalloc(&dev, count * sizeof(float)) != cudaSuccess) return "cudaMalloc failed";
    if (cudaMalloc(&gathered, count * sizeof(float) * static_cast<std::size_t>(world_size)) != cudaSuccess) {
      return "cudaMalloc failed";
    }
    cudaMemcpy(dev, host.data(), count * sizeof(float), cudaMemcpyHostToDevice);
    if (Status s = (*comm)->all_gather(dev, gathered, static_cast<int64_t>(count)); !s.is_ok()) return s.to_string();
    if (Status s = (*comm)->all_reduce_sum(dev, static_cast<int64_t>(count)); !s.is_ok()) return s.to_string();
    if (Status s = (*comm)->synchronize(); !s.is_ok()) return s.to_string();
    std::vector<float> sum(count), all(count * static_cast<std::size_t>(world_size));
    cudaMemcpy(sum.data(), dev, count * sizeof(float), cudaMemcpyDeviceToHost);
    cudaMemcpy(all.data(), gathered, all.size() * sizeof(float), cudaMemcpyDeviceToHost);
    cudaFree(dev);
    cudaFree(gathered);
    std::vector<float> expected(count, 0.0f);
    for (int r = 0; r < world_size; ++r) {
      std::vector<float> theirs = integer_data(r, count, seed);
      for (std::size_t i = 0; i < count; ++i) {
        expected[i] += theirs[i];
        if (all[static_cast<std::size_t>(r) * count + i] != theirs[i]) {
          return fmt::format("all_gather count {}: rank {}'s [{}] wrong", count, r, i);
        }
      }
    }
    for (std::size_t i = 0; i < count; ++i) {
      if (sum[i] != expected[i]) return fmt::format("all_reduce_sum count {}: [{}] = {}, expected {}", count, i, sum[i], expected[i]);
    }
  }
  int root = world_size - 1;
  std::string want(100000, 'x');
  for (std::size_t i = 0; i < want.size(); ++i) want[i] = static_cast<char>((i * 7 + 3) & 0xff);
  std::string bytes = rank == root ? want : std::string("stale");
  if (Status s = (*comm)->broadcast_bytes(bytes, root); !s.is_ok()) return s.to_string();
  if (bytes != want) return "broadcast_bytes: bytes differ";
  if (Status s = (*comm)->barrier(); !s.is_ok()) return s.to_string();
  return "";
}

TEST_CASE("nccl: all_reduce_sum, all_gather, broadcast_bytes and barrier are exact, one rank per GPU") {
  int gpus = visible_gpus();
  if (gpus < 1) {
    MESSAGE("no GPU visible: nothing to test");
    return;
  }
  for (int world_size : {1, 2, 4, 8}) {
    if (world_size > gpus) break;
    CAPTURE(world_size);
    std::string dir = fresh_dir(fmt::format("exact{}", world_size));
    std::vector<int> ranks;
    for (int r = 0; r < world_size; ++r) ranks.push_back(r);
    auto outcomes = testing::run_ranks(ranks, [&](int rank) { return check_rank(dir, rank, world_size); }, 120s);
    for (const auto& o : outcomes) {
      INFO("rank ", o.rank, ": ", o.report);
      CHECK(o.report.empty());
      CHECK(o.exit_code == 0);
    }
    std::filesystem::remove_all(dir);
  }
}

TEST_CASE("nccl: a rank killed mid-stream is named by the others within the time-out") {
  int gpus = visible_gpus();
  if (gpus < 2) {
    MESSAGE("fewer than 2 GPUs: nothing to test");
    return;
  }
  std::string dir = fresh_dir("killed");
  auto outcomes = testing::run_ranks(
      {0, 1},
      [&](int rank) -> std::string {
        auto comm = join(dir, rank, 2, 5000ms);
        if (!comm.is_ok()) return comm.status().to_string();
        float* dev = nullptr;
        if (cudaMalloc(&dev, (1 << 20) * sizeof(float)) != cudaSuccess) return "cudaMalloc failed";
        if (rank == 1) {
          (void)(*comm)->barrier();
          ::raise(SIGKILL);
        }
        (void)(*comm)->barrier();
        auto until = std::chrono::steady_clock::now() + 20s;
        while (std::chrono::steady_clock::now() < until) {
          Status s = (*comm)->all_reduce_sum(dev, 1 << 20);
          if (s.is_ok()) s = (*comm)->synchronize();
          if (!s.is_ok()) return s.to_string();
        }
        return std::string("no error although rank 1 was killed");
      },
      60s);
  INFO("rank 0: ", outcomes[0].report);
  CHECK_FALSE(outcomes[0].timed_out);
  CHECK(outcomes[0].seconds < 15.0);
  CHECK(outcomes[0].report.find("tp rank 0 on ") != std::string::npos);
  CHECK(outcomes[0].report.find(fmt::format("rank 1 (")) != std::string::npos);
  CHECK(outcomes[0].report.find(fmt::format("pid {})", outcomes[1].pid)) != std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace llmctl::dist
