// One rank's view of a tensor-parallel group: the collectives the sharded
// decoder needs, over Gloo (CPU, TCP) or NCCL (CUDA). Buffers live in the
// memory of the backend the communicator was made for (host for Gloo, device
// for NCCL). Every call is collective: all ranks make the same calls in the
// same order with the same counts. A peer that is gone or silent past the
// group's timeout turns into an error naming that rank, its node, address and
// interface, never a hang. After a failure every later call returns the same
// error: the group is broken for good. Ranks should leave together (e.g.
// through the rendezvous store): a rank that destroys its communicator while a
// slower peer is still inside the last collective fails that collective.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace llmctl::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;

  // data[0..count) := sum over ranks of each rank's data[0..count).
  virtual Status all_reduce_sum(float* data, int64_t count) = 0;
  // out[r * count + i] := rank r's in[i]; out holds world_size() * count.
  virtual Status all_gather(const float* in, float* out, int64_t count) = 0;
  // Root's `bytes` (host memory) to every rank; others' `bytes` is replaced.
  // Rank 0 sends each step's batch to the other ranks through this.
  virtual Status broadcast_bytes(std::string& bytes, int root) = 0;
  virtual Status barrier() = 0;
  // Waits until every collective this rank enqueued has finished; the error
  // names the peer that is gone or stuck. Gloo's collectives finish before
  // they return; NCCL's are enqueued on a CUDA stream, and a rank that then
  // waited on that stream without this could wait for a dead peer forever.
  virtual Status synchronize() { return Status::ok(); }
  // The cudaStream_t the collectives run on (NCCL); null on the host (Gloo).
  // The rank's CUDA backend enqueues on it too, so kernels and collectives
  // are ordered without events.
  virtual void* stream() const { return nullptr; }
};

}  // namespace llmctl::dist
