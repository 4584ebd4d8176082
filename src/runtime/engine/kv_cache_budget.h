// How many KV-cache blocks fit on a device, as vLLM's
// --gpu-memory-utilization means it: of the device's total memory, this
// process may hold `utilization`; weights and the peak activations of a
// profiling step (measured as the drop in free memory, which also counts
// other processes on the device) come first, the KV cache gets the rest.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "kernels/kernels.h"

namespace llmctl::engine {

struct KvCacheBudget {
  int32_t num_blocks = 0;
  int64_t bytes = 0;    // num_blocks * block_bytes
  int64_t tokens = 0;   // num_blocks * block_size
  // How many requests of max_model_len tokens fit at once.
  double max_concurrency = 0;
  std::string summary;  // one line for the log
};

// Bytes one block of the paged KV cache takes across all layers, K and V:
// block_size tokens of num_kv_heads * head_dim elements of `dtype` (the
// backend's kv_dtype()). num_kv_heads: the heads this process holds (a
// tensor-parallel rank holds its share).
int64_t kv_block_bytes(int64_t num_layers, int32_t block_size, int64_t num_kv_heads, int64_t head_dim,
                       kernels::KvDtype dtype);

struct KvCacheDemand {
  uint64_t total_bytes = 0;          // device memory
  uint64_t free_after_profile = 0;   // free memory after weights + a profiling step
  double utilization = 0.9;          // --gpu-memory-utilization
  int64_t block_bytes = 0;           // one block across all layers, K and V (kv_block_bytes)
  kernels::KvDtype dtype = kernels::KvDtype::kF32;  // what block_bytes counted; named in the summary
  int32_t block_size = 16;           // tokens per block
  int32_t max_model_len = 0;         // the longest request the engine admits
};

// INVALID_ARGUMENT (naming the flag to change) when not even one request of
// max_model_len tokens fits.
Result<KvCacheBudget> plan_kv_cache(const KvCacheDemand& d);

}  // namespace llmctl::engine
