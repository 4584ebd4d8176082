// The tensor-parallel ranks of one engine on this machine: `generate --tp N`
// and `serve --tp N` start ranks 1..N-1 as `llmctl worker` child processes of
// this binary, rendezvous with them through a file store in a fresh temporary
// directory, and hold rank 0's communicator (Gloo over loopback on the CPU,
// NCCL on GPUs 0..N-1).
//
// Children never outlive this process: each gets PR_SET_PDEATHSIG(SIGKILL),
// and the destructor waits for them (after rank 0's engine said stop) and
// kills what is still there after a grace period. Not thread-safe except
// poll_exited() vs. nothing else running on the group.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "runtime/dist/communicator.h"
#include "runtime/dist/rendezvous_store.h"

namespace llmctl::cli {

struct LocalRankGroupOptions {
  std::string model_dir;
  int tp = 2;
  // "cpu" (Gloo over loopback) or "cuda" (NCCL; rank r drives GPU r).
  std::string device = "cpu";
  int threads_per_rank = 1;
  // Rendezvous, and each of rank 0's collectives.
  std::chrono::milliseconds timeout{30000};
  std::string log_level = "warn";
  std::string load_format = "auto";  // engine::EngineConfig::load_format
};

// The --device a rank of a local group gets: cpu, or cuda:<rank>.
std::string rank_device(const std::string& device, int rank);

class LocalRankGroup {
 public:
  // Spawns the workers and joins the group as rank 0; on failure kills and
  // reaps whatever it started.
  static Result<std::unique_ptr<LocalRankGroup>> start(const LocalRankGroupOptions& options);
  ~LocalRankGroup();

  dist::Communicator* communicator() { return comm_.get(); }

  // Reaps exited workers without blocking; the first call after one exited
  // returns "rank R (pid P) exited with ..." and later calls nothing for it.
  std::optional<std::string> poll_exited();
  // SIGKILL to every worker still running, then reaps them all.
  void kill_all();

 private:
  struct Child {
    int rank = 0;
    pid_t pid = -1;
    bool reaped = false;
  };
  LocalRankGroup() = default;
  Status spawn(const LocalRankGroupOptions& options, int rank);

  std::string dir_;  // the file store; removed by the destructor
  std::unique_ptr<dist::RendezvousStore> store_;
  std::unique_ptr<dist::Communicator> comm_;
  std::vector<Child> children_;
};

}  // namespace llmctl::cli
