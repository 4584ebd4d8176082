// Writes the step's k/v rows into the bf16 paged cache at slot_mapping[t]
// (negative: the token is skipped, e.g. a prefix-cache hit), rounded to
// nearest even as transformers' bf16 cache holds them.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.cuh"

namespace llmctl::kernels::cuda {
namespace {

// Blocks (token, slice of its KV * D row), one element per thread: a
// decode token's row is a few thousand floats, which one block would copy
// in several dependent rounds.
struct StoreKvLaunch {
  static constexpr int kThreads = 256;
  dim3 grid;
  StoreKvLaunch(int64_t num_tokens, int64_t row)
      : grid(static_cast<unsigned>(num_tokens), static_cast<unsigned>((row + kThreads - 1) / kThreads)) {}
};

__global__ void store_kv_kernel(__nv_bfloat16* k_cache, __nv_bfloat16* v_cache, const float* k, int64_t k_stride,
                                const float* v, int64_t v_stride, const int32_t* slot_mapping, int64_t row) {
  pdl_begin();
  const int64_t t = blockIdx.x;
  const int64_t i = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  const int64_t slot = slot_mapping[t];
  if (slot < 0 || i >= row) return;
  const float kv = k[t * k_stride + i], vv = v[t * v_stride + i];
  k_cache[slot * row + i] = __float2bfloat16_rn(kv);
  v_cache[slot * row + i] = __float2bfloat16_rn(vv);
}

void launch_store_kv(__nv_bfloat16* k_cache, __nv_bfloat16* v_cache, const float* k, int64_t k_stride, const float* v,
                     int64_t v_stride, const int32_t* slot_mapping, int64_t num_tokens, int64_t row,
                     cudaStream_t stream) {
  const StoreKvLaunch cfg(num_tokens, row);
  launch_kernel(store_kv_kernel, cfg.grid, StoreKvLaunch::kThreads, stream, k_cache, v_cache, k, k_stride, v, v_stride,
                slot_mapping, row);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void store_kv(__nv_bfloat16* k_cache, __nv_bfloat16* v_cache, const float* k, int64_t k_stride, const float* v,
              int64_t v_stride, const int32_t* slot_mapping, int64_t num_tokens, int64_t num_kv_heads,
              int64_t head_dim, cudaStream_t stream) {
  const int64_t row = num_kv_heads * head_dim;
  CUDA_REQUIRE(num_tokens >= 0 && num_tokens < (int64_t{1} << 31) && row > 0);
  CUDA_REQUIRE(k_stride >= row && v_stride >= row);
  CUDA_REQUIRE(row / StoreKvLaunch::kThreads < 65535);
  if (num_tokens == 0) return;
  launch_store_kv(k_cache, v_cache, k, k_stride, v, v_stride, slot_mapping, num_tokens, row, stream);
}

}  // namespace llmctl::kernels::cuda
