// The CUDA backend (kernels/cuda): the kernels::Backend ops on one NVIDIA GPU,
// everything queued on one stream. linear() weights and the embedding table
// are bf16 (weight_dtype(); uploaded from the checkpoint's dtype by
// upload_weight), and so is the KV cache (kv_dtype(): batched decode is bound
// by its bytes); activations and norms stay fp32, since batch-1 decode is bound by the weight bytes
// alone and fp32 elsewhere keeps the other ops exact twins of the CPU backend. Declared
// only in builds with the CUDA backend (LLMCTL_WITH_CUDA); the CPU build
// never sees it.
//
// Memory comes from the device's stream-ordered pool (cudaMallocAsync), so
// per-step buffers cost no device-wide synchronisation. copy_to_device
// returns once the source is read (small copies go through pinned slots and
// stay queued on the stream); copy_to_host returns when the copy is complete
// (the engine reads the host side right after). Failures: allocation returns UNAVAILABLE; a failing
// kernel or library call is a broken device or a bug and aborts with the
// statement and device id (kernels/cuda/cuda_check.h).
#pragma once

#if !defined(LLMCTL_WITH_CUDA)
#error "kernels/cuda_backend.h is only for builds with the CUDA backend (LLMCTL_WITH_CUDA)"
#endif

#include <memory>

#include "common/status.h"
#include "kernels/kernels.h"

namespace llmctl::kernels {

// GPUs the CUDA runtime sees; 0 when there is no driver or no device.
int cuda_device_count();

// A backend on GPU `device`; UNAVAILABLE when there is no such device.
// stream: a cudaStream_t of that device to enqueue on (not owned; it must
// outlive the backend), e.g. the tensor-parallel group's NCCL stream; null:
// a stream of the backend's own.
Result<std::unique_ptr<Backend>> make_cuda_backend(int device, void* stream = nullptr);

// A recorded sequence of a CUDA backend's ops, replayed as one CUDA graph:
// what a decode step of a fixed batch shape becomes once captured, without
// a host launch per op. The ops must enqueue only (no copy_to_device,
// copy_to_host, synchronize, or allocate that grows memory while capturing);
// a replay re-runs them on the same pointers, reading whatever the device
// memory holds then (a step's inputs are uploaded before replay()).
// Owned by the thread that drives the backend.
class CudaGraph {
 public:
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;
  ~CudaGraph();

  // Starts recording `backend`'s ops (which must be a CUDA backend);
  // INVALID_ARGUMENT for another backend, INTERNAL when CUDA refuses.
  static Status begin_capture(Backend& backend);
  // Ends the recording begun on `backend` and instantiates it.
  static Result<std::unique_ptr<CudaGraph>> end_capture(Backend& backend);
  // Enqueues the recorded ops on the backend's stream.
  void replay();

 private:
  struct Impl;
  explicit CudaGraph(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmctl::kernels
