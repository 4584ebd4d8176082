// Embedding lookup: out[t, :] = table[ids[t], :], the table in bf16 (the
// backend's weight dtype, so a tied LM head reads the same table) widened to
// fp32 exactly.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.cuh"

namespace llmctl::kernels::cuda {
namespace {

struct EmbeddingLaunch {
  static constexpr int kThreads = 256;  // one block per token, threads stride the row
};

__global__ void embedding_kernel(float* out, const int32_t* ids, const __nv_bfloat16* table, int64_t hidden) {
  pdl_begin();
  const int64_t t = blockIdx.x;
  const __nv_bfloat16* src = table + static_cast<int64_t>(ids[t]) * hidden;
  float* dst = out + t * hidden;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) dst[i] = __bfloat162float(src[i]);
}

void launch_embedding(float* out, const int32_t* ids, const __nv_bfloat16* table, int64_t num_tokens, int64_t hidden,
                      cudaStream_t stream) {
  launch_kernel(embedding_kernel, static_cast<unsigned>(num_tokens), EmbeddingLaunch::kThreads, stream, out, ids, table,
                hidden);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void embedding(float* out, const int32_t* ids, const __nv_bfloat16* table, int64_t num_tokens, int64_t hidden,
               cudaStream_t stream) {
  CUDA_REQUIRE(num_tokens >= 0 && num_tokens < (int64_t{1} << 31) && hidden > 0);
  if (num_tokens == 0) return;
  launch_embedding(out, ids, table, num_tokens, hidden, stream);
}

}  // namespace llmctl::kernels::cuda
