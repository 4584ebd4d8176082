// Rotary embedding in place, half-split layout (dim i pairs with i + D/2), on
// q and k of each token. The angle is position * inv_freq[i] in fp32, as the
// CPU backend and transformers form it; sincosf is the accurate (not the
// fast-math) version so long positions keep their phase.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.cuh"

namespace llmctl::kernels::cuda {
namespace {

// Blocks (token, slice of the token's (head, pair)s), one pair per thread:
// at decode a token's 1-2k pairs spread over several multiprocessors
// instead of queueing in one block.
struct RopeLaunch {
  static constexpr int kThreads = 128;
  dim3 grid;
  RopeLaunch(int64_t num_tokens, int64_t num_pairs)
      : grid(static_cast<unsigned>(num_tokens), static_cast<unsigned>((num_pairs + kThreads - 1) / kThreads)) {}
};

__global__ void rope_kernel(float* q, int64_t q_stride, float* k, int64_t k_stride, const int32_t* positions,
                            const float* inv_freq, int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim) {
  pdl_begin();
  const int64_t t = blockIdx.x;
  const int64_t half = head_dim / 2;
  const float pos = static_cast<float>(positions[t]);
  const int64_t num_pairs = (num_q_heads + num_kv_heads) * half;
  const int64_t p = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (p < num_pairs) {
    const int64_t head = p / half, i = p % half;
    float* v =
        head < num_q_heads ? q + t * q_stride + head * head_dim : k + t * k_stride + (head - num_q_heads) * head_dim;
    float s, c;
    sincosf(pos * inv_freq[i], &s, &c);
    const float x1 = v[i], x2 = v[i + half];
    v[i] = x1 * c - x2 * s;
    v[i + half] = x2 * c + x1 * s;
  }
}

void launch_rope(float* q, int64_t q_stride, float* k, int64_t k_stride, const int32_t* positions,
                 const float* inv_freq, int64_t num_tokens, int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim,
                 cudaStream_t stream) {
  const RopeLaunch cfg(num_tokens, (num_q_heads + num_kv_heads) * (head_dim / 2));
  launch_kernel(rope_kernel, cfg.grid, RopeLaunch::kThreads, stream, q, q_stride, k, k_stride, positions, inv_freq,
                num_q_heads, num_kv_heads, head_dim);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void rope(float* q, int64_t q_stride, float* k, int64_t k_stride, const int32_t* positions, const float* inv_freq,
          int64_t num_tokens, int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim, cudaStream_t stream) {
  CUDA_REQUIRE(num_tokens >= 0 && num_tokens < (int64_t{1} << 31));
  CUDA_REQUIRE(head_dim > 0 && head_dim % 2 == 0 && num_q_heads >= 0 && num_kv_heads >= 0);
  CUDA_REQUIRE(q_stride >= num_q_heads * head_dim && k_stride >= num_kv_heads * head_dim);
  CUDA_REQUIRE((num_q_heads + num_kv_heads) * (head_dim / 2) / RopeLaunch::kThreads < 65535);
  if (num_tokens == 0) return;
  launch_rope(q, q_stride, k, k_stride, positions, inv_freq, num_tokens, num_q_heads, num_kv_heads, head_dim, stream);
}

}  // namespace llmctl::kernels::cuda
