// Growing the split-decode scratch (partials and per-(sequence, head)
// counters) that paged_attention.cu's per-query-head split and
// decode_attention.cu's grouped split share.
#pragma once

#include <cstddef>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

namespace llmctl::kernels::cuda {

// At least `partial_floats` partials and `counters` zeroed counters (every
// merge leaves its counter at zero again). Stream-ordered, so a CUDA graph
// captured later sees the grown buffers (the backend's scratch_epoch()
// changes with them).
inline void grow_attention_scratch(AttentionScratch& scratch, std::size_t partial_floats, std::size_t counters,
                                   cudaStream_t stream) {
  if (scratch.partial_floats < partial_floats) {
    if (scratch.partials != nullptr) CUDA_CHECK(cudaFreeAsync(scratch.partials, stream));
    void* p = nullptr;
    CUDA_CHECK(cudaMallocAsync(&p, partial_floats * sizeof(float), stream));
    scratch.partials = static_cast<float*>(p);
    scratch.partial_floats = partial_floats;
  }
  if (scratch.num_counters < counters) {
    if (scratch.counters != nullptr) CUDA_CHECK(cudaFreeAsync(scratch.counters, stream));
    void* p = nullptr;
    CUDA_CHECK(cudaMallocAsync(&p, counters * sizeof(int), stream));
    CUDA_CHECK(cudaMemsetAsync(p, 0, counters * sizeof(int), stream));
    scratch.counters = static_cast<int*>(p);
    scratch.num_counters = counters;
  }
}

}  // namespace llmctl::kernels::cuda
