#include "cli/local_rank_group.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "cli/tensor_parallel_group.h"
#if defined(LLMCTL_WITH_CUDA)
#include "kernels/cuda_backend.h"
#endif
#include "runtime/model/model_config.h"
#include "runtime/model/shard_layout.h"

namespace llmctl::cli {

namespace {

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exit code {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("signal {} ({})", WTERMSIG(status), ::strsignal(WTERMSIG(status)));
  return fmt::format("wait status {}", status);
}

}  // namespace

std::string rank_device(const std::string& device, int rank) {
  return device == "cpu" ? device : "cuda:" + std::to_string(rank);
}

Status LocalRankGroup::spawn(const LocalRankGroupOptions& o, int rank) {
  std::vector<std::string> args = {"llmctl",
                                   "--log-level",
                                   o.log_level,
                                   "worker",
                                   "--model",
                                   o.model_dir,
                                   "--rank",
                                   std::to_string(rank),
                                   "--tp",
                                   std::to_string(o.tp),
                                   "--rendezvous",
                                   dir_,
                                   "--device",
                                   rank_device(o.device, rank),
                                   "--threads",
                                   std::to_string(o.threads_per_rank),
                                   "--load-format",
                                   o.load_format};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return Status::io_error(fmt::format("starting rank {}: fork: {}", rank, ::strerror(errno)));
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
    const int null_fd = ::open("/dev/null", O_WRONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDOUT_FILENO);  // stdout is rank 0's (generate --json)
    ::execv("/proc/self/exe", argv.data());
    ::_exit(127);
  }
  children_.push_back(Child{rank, pid, false});
  return Status::ok();
}

Result<std::unique_ptr<LocalRankGroup>> LocalRankGroup::start(const LocalRankGroupOptions& o) {
  if (o.tp < 2) return Status::invalid_argument("a local rank group needs --tp of at least 2");
  // The model must split tp ways; say so before starting any process.
  ASSIGN_OR_RETURN(model::ModelConfig config, model::load_model_config(o.model_dir));
  if (auto layout = model::ShardLayout::make(config, 0, o.tp); !layout.is_ok()) {
    return layout.status().with_context(o.model_dir);
  }
  if (o.device != "cpu") {
    if (o.device != "cuda") {
      return Status::invalid_argument("--device " + o.device + " with --tp: use cpu, or cuda (rank r drives GPU r)");
    }
#if defined(LLMCTL_WITH_CUDA)
    if (const int gpus = kernels::cuda_device_count(); gpus < o.tp) {
      return Status::unavailable(fmt::format("--tp {} on cuda needs {} GPUs on this node; {} visible", o.tp, o.tp, gpus));
    }
#endif
  }
  std::unique_ptr<LocalRankGroup> g(new LocalRankGroup());
  std::string tmpl = (std::filesystem::temp_directory_path() / "llmctl-tp-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return Status::io_error(fmt::format("creating the rendezvous directory {}: {}", tmpl, ::strerror(errno)));
  }
  g->dir_ = tmpl;
  ASSIGN_OR_RETURN(g->store_, dist::open_file_store(g->dir_));
  for (int r = 1; r < o.tp; ++r) RETURN_IF_ERROR(g->spawn(o, r));
  TensorParallelJoin join;
  join.rank = 0;
  join.tp = o.tp;
  join.device = rank_device(o.device, 0);
  join.hostname = "127.0.0.1";  // every rank is on this machine
  join.timeout = o.timeout;
  auto comm = join_tensor_parallel_group(join, *g->store_);
  if (!comm.is_ok()) {
    // A worker that failed to start says why on stderr; name its exit here.
    Status st = comm.status();
    if (auto exited = g->poll_exited()) st = st.with_context(*exited);
    return st.with_context("joining the tensor-parallel group");
  }
  g->comm_ = std::move(comm).value();
  return g;
}

std::optional<std::string> LocalRankGroup::poll_exited() {
  for (Child& c : children_) {
    if (c.reaped) continue;
    int status = 0;
    if (::waitpid(c.pid, &status, WNOHANG) == c.pid) {
      c.reaped = true;
      return fmt::format("tensor-parallel rank {} (pid {}) exited with {}", c.rank, c.pid,
                         describe_wait_status(status));
    }
  }
  return std::nullopt;
}

void LocalRankGroup::kill_all() {
  for (Child& c : children_) {
    if (c.reaped) continue;
    ::kill(c.pid, SIGKILL);
    int status = 0;
    ::waitpid(c.pid, &status, 0);
    c.reaped = true;
  }
}

LocalRankGroup::~LocalRankGroup() {
  // Rank 0's engine has told the workers to stop; give them a moment to exit
  // on their own before killing them.
  comm_.reset();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    bool running = false;
    for (Child& c : children_) {
      if (c.reaped) continue;
      int status = 0;
      if (::waitpid(c.pid, &status, WNOHANG) == c.pid) {
        c.reaped = true;
      } else {
        running = true;
      }
    }
    if (!running || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill_all();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

}  // namespace llmctl::cli
