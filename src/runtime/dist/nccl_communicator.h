// A Communicator over NCCL, for tensor parallelism on CUDA GPUs (built only
// with LLMCTL_CUDA). Float buffers are device memory; all_reduce_sum and
// all_gather are enqueued on the group's stream and return once enqueued —
// their completion is ordered on that stream like any kernel. A peer that
// dies or stalls shows up in the next blocking call (synchronize(),
// broadcast_bytes(), barrier()), which waits at most the group's time-out,
// then aborts the NCCL communicator and names the peer (as Gloo does).
// all_reduce_sum and all_gather may be captured into a CUDA graph on the
// group's stream (decode graphs); replaying it runs them as enqueued calls.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "runtime/dist/communicator.h"
#include "runtime/dist/rendezvous_store.h"

namespace llmctl::dist {

struct NcclOptions {
  int rank = 0;
  int world_size = 1;
  int device = 0;  // CUDA device this rank uses
  // Keys in the store are prefixed with this, so several groups can share it.
  std::string group = "tp";
  // NCCL_SOCKET_IFNAME for NCCL's own bootstrap and socket transport, and
  // the address peers are probed at; empty: as for Gloo (hostname, else the
  // default route's address).
  std::string interface;
  std::string hostname;
  // Rendezvous, communicator set-up and every blocking wait.
  std::chrono::milliseconds timeout{60000};
  // cudaStream_t to enqueue on; null: a stream the communicator creates.
  void* stream = nullptr;
};

// synchronize() waits for everything enqueued on stream(), at most the
// group's time-out.
class NcclCommunicator : public Communicator {};

// Joins the group: rank 0 makes the NCCL unique id and publishes it in
// `store`; every rank publishes its endpoint (rank_endpoint.h) and inits its
// communicator without blocking, polling until ready or options.timeout.
Result<std::unique_ptr<NcclCommunicator>> connect_nccl(const NcclOptions& options, RendezvousStore& store);

}  // namespace llmctl::dist
