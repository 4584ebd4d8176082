// Chooses the compute backend for a --device value, so callers (the engine
// loader, benches) need not know which backends this binary was built with.
#pragma once

#include <memory>
#include <string_view>

#include "common/status.h"
#include "kernels/kernels.h"

namespace llmctl::kernels {

// device: "cpu"; "cuda" (GPU 0) or "cuda:N"; "auto": cuda on GPU 0 when this
// binary has the CUDA backend and a GPU is visible, else cpu. num_threads is
// for the CPU backend (<= 0: all cores). INVALID_ARGUMENT for another value;
// UNAVAILABLE for cuda in a build without it or on a host without the GPU.
// cuda_stream: for a CUDA backend, the cudaStream_t to enqueue on (a
// tensor-parallel rank passes its NCCL group's stream); ignored for the CPU.
Result<std::unique_ptr<Backend>> make_backend(std::string_view device, int num_threads = 0,
                                              void* cuda_stream = nullptr);

}  // namespace llmctl::kernels
