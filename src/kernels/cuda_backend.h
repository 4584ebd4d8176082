// The CUDA backend (kernels/cuda): the kernels::Backend ops on one NVIDIA GPU,
// fp32 activations and weights, everything queued on one stream. Declared
// only in builds with the CUDA backend (LLMCTL_WITH_CUDA); the CPU build
// never sees it.
//
// Memory comes from the device's stream-ordered pool (cudaMallocAsync), so
// per-step buffers cost no device-wide synchronisation. copy_to_device and
// copy_to_host return when the copy is complete (the engine frees or reads the
// host side right after). Failures: allocation returns UNAVAILABLE; a failing
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
Result<std::unique_ptr<Backend>> make_cuda_backend(int device);

}  // namespace llmctl::kernels
