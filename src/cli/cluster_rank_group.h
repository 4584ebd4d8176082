// The tensor-parallel ranks of one engine spread over a cluster: `serve --tp N
// --address HEAD` keeps rank 0 in its own process (the API is served from
// where serve was started) and asks the head for a placement group.
//   --device cpu:  N-1 bundles of {CPU: 1}, bundle i running `llmctl worker
//                  --rank i+1` on whichever node the head picked; Gloo.
//   --device cuda: N bundles of {GPU: 1}. Bundle 0 is rank 0's GPU: pinned to
//                  this node, without a command (a reservation, so PACK
//                  cannot put rank 1 on the same GPU); rank 0 drives the GPU
//                  index the head gave it, which is why serve must see the
//                  same devices (CUDA_VISIBLE_DEVICES) as its node's agent.
//                  Bundle r runs rank r, its agent setting CUDA_VISIBLE_DEVICES
//                  to its GPU, so the worker drives device 0; NCCL.
// Every rank meets the others through the head's KV store under a key
// prefix of this engine's own, then the collectives connect them directly.
//
// What every node must agree on: the llmctl binary and the model folder sit
// at the same paths as on the node running serve (a worker runs this
// process's /proc/self/exe path and --model as given). The cluster token
// never appears in a worker's argv: agents hand their own environment
// (LLMCTL_TOKEN, LLMCTL_STATE_DIR and so the node's cluster.json) to what
// they launch. GLOO_SOCKET_IFNAME, NCCL_SOCKET_IFNAME and NCCL_IB_DISABLE, when
// set for serve, go into the group's environment, so every rank on every node
// gets them (the seed's "exported on the head only" trap); when unset, each
// rank binds the address it reaches the head from.
//
// The destructor (after rank 0's engine told the workers to stop) waits a
// moment for them to exit, then removes the placement group, so no worker
// outlives serve on any node, and deletes the group's rendezvous keys. A
// serve killed outright cannot; its workers end on their own (their
// collectives fail) and the next serve on the same host removes the group.
// Not thread-safe: one thread at a time (serve's rank watcher after start).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "runtime/control/daemon.h"
#include "runtime/dist/communicator.h"
#include "runtime/dist/rendezvous_store.h"

namespace llmctl::control {
class ControlClient;
}

namespace llmctl::cli {

struct ClusterRankGroupOptions {
  control::ClusterAccess access;  // the head and the token
  std::string model_dir;          // the same path on every node
  std::string name;               // the placement group's name (shown by `llmctl status`)
  int tp = 2;
  std::string device = "cpu";     // cpu or cuda
  // cuda: the node rank 0's GPU is pinned to (this node's id, else its name).
  std::string rank0_node;
  int threads_per_rank = 1;
  std::string strategy = "PACK";  // PACK, SPREAD, STRICT_PACK, STRICT_SPREAD
  // Rendezvous, and each of rank 0's collectives.
  std::chrono::milliseconds timeout{60000};
  std::string log_level = "warn";
  std::string load_format = "auto";  // engine::EngineConfig::load_format
};

class ClusterRankGroup {
 public:
  // Places ranks 1..tp-1 (and on GPUs rank 0's GPU) and joins the group as rank 0. A group the cluster
  // cannot place, or a rendezvous that times out, fails with what the head
  // knows of every rank (node, address, state, exit code); the placement
  // group is removed again.
  static Result<std::unique_ptr<ClusterRankGroup>> start(const ClusterRankGroupOptions& options);
  ~ClusterRankGroup();

  dist::Communicator* communicator() { return comm_.get(); }
  // What rank 0 runs on: "cpu", or "cuda:K" with K the GPU index the head
  // gave bundle 0 on this node.
  const std::string& device() const { return device_; }
  const std::string& group_id() const { return group_id_; }

  // Asks the head (at most every 200 ms) how the ranks are; the first call
  // after one stopped running returns "tensor-parallel rank R on node N
  // (ADDRESS) exited with ...", later calls nothing for it. A head that does
  // not answer is logged, not reported: the ranks may well be fine.
  std::optional<std::string> poll_exited();
  // Removes the placement group: agents stop every worker.
  void kill_all();
  // One line per worker rank: where the head placed it, how it is, and
  // where its log is (errors at start-up carry it).
  std::string describe_ranks();

 private:
  ClusterRankGroup() = default;

  ClusterRankGroupOptions options_;
  std::string engine_id_;  // the rendezvous key prefix under dist/
  std::string group_id_;
  std::unique_ptr<control::ControlClient> client_;
  std::unique_ptr<dist::RendezvousStore> store_;
  std::unique_ptr<dist::Communicator> comm_;
  std::chrono::steady_clock::time_point next_poll_{};
  std::vector<bool> reported_;  // by bundle
  int rank_offset_ = 1;         // bundle b runs rank b + rank_offset_ (0 on GPUs: bundle 0 is rank 0's)
  std::string device_ = "cpu";
  bool removed_ = false;
};

// The store a `llmctl worker` meets its group in, from --rendezvous:
//   head:HOST:PORT/ENGINE  the head's KV under dist/ENGINE/, reached with this
//                          node's cluster token (LLMCTL_TOKEN, else its
//                          cluster.json in `state_dir`)
//   DIR                    a file store in DIR (ranks of one node)
// `local_address` is what the rank should bind when no interface is named:
// the address toward the head, or 127.0.0.1 for a file store.
struct RankStore {
  std::unique_ptr<dist::RendezvousStore> store;
  std::string local_address;
};
Result<RankStore> open_rank_store(const std::string& rendezvous, const std::string& state_dir);

}  // namespace llmctl::cli
