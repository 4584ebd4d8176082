// RMSNorm per row: out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight.
// One block per row. Rows may sit inside wider rows (per-head norms of q and
// k within fused qkv rows): row r starts at (r / heads) * stride + (r % heads) * n. out may equal x: each thread reads and writes only its
// own elements, and every read happens before the block reduction.
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.cuh"

namespace llmctl::kernels::cuda {
namespace {

struct RmsNormLaunch {
  int threads = 0;
  explicit RmsNormLaunch(int64_t n) {
    // Enough threads to cover short rows in one pass, 1024 for wide ones.
    const int64_t rounded = (n + 31) / 32 * 32;
    threads = static_cast<int>(rounded < 32 ? 32 : (rounded > 1024 ? 1024 : rounded));
  }
};

__global__ void rms_norm_kernel(float* out, const float* x, const float* weight, int64_t n, float eps, int64_t heads,
                                int64_t stride) {
  pdl_begin();
  const int64_t r = blockIdx.x;
  const int64_t offset = (r / heads) * stride + (r % heads) * n;
  const float* xr = x + offset;
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sum += xr[i] * xr[i];
  const float inv = rsqrtf(block_sum(sum) / static_cast<float>(n) + eps);
  float* o = out + offset;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) o[i] = weight[i] * (xr[i] * inv);
}

void launch_rms_norm(float* out, const float* x, const float* weight, int64_t rows, int64_t n, float eps,
                     int64_t heads, int64_t stride, cudaStream_t stream) {
  const RmsNormLaunch cfg(n);
  launch_kernel(rms_norm_kernel, static_cast<unsigned>(rows), cfg.threads, stream, out, x, weight, n, eps, heads,
                stride);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void rms_norm(float* out, const float* x, const float* weight, int64_t rows, int64_t n, float eps,
              cudaStream_t stream) {
  CUDA_REQUIRE(rows >= 0 && rows < (int64_t{1} << 31) && n > 0);
  if (rows == 0) return;
  launch_rms_norm(out, x, weight, rows, n, eps, 1, n, stream);
}

void rms_norm_heads(float* x, int64_t stride, const float* weight, int64_t num_tokens, int64_t num_heads,
                    int64_t head_dim, float eps, cudaStream_t stream) {
  CUDA_REQUIRE(num_tokens >= 0 && num_heads > 0 && head_dim > 0 && stride >= num_heads * head_dim);
  CUDA_REQUIRE(num_tokens * num_heads < (int64_t{1} << 31));
  if (num_tokens == 0) return;
  launch_rms_norm(x, x, weight, num_tokens * num_heads, head_dim, eps, num_heads, stride, stream);
}

}  // namespace llmctl::kernels::cuda
