// RMSNorm per row: out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight.
// One block per row. out may equal x: each thread reads and writes only its
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

__global__ void rms_norm_kernel(float* out, const float* x, const float* weight, int64_t n, float eps) {
  pdl_begin();
  const int64_t r = blockIdx.x;
  const float* xr = x + r * n;
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sum += xr[i] * xr[i];
  const float inv = rsqrtf(block_sum(sum) / static_cast<float>(n) + eps);
  float* o = out + r * n;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) o[i] = weight[i] * (xr[i] * inv);
}

void launch_rms_norm(float* out, const float* x, const float* weight, int64_t rows, int64_t n, float eps,
                     cudaStream_t stream) {
  const RmsNormLaunch cfg(n);
  launch_kernel(rms_norm_kernel, static_cast<unsigned>(rows), cfg.threads, stream, out, x, weight, n, eps);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void rms_norm(float* out, const float* x, const float* weight, int64_t rows, int64_t n, float eps,
              cudaStream_t stream) {
  CUDA_REQUIRE(rows >= 0 && rows < (int64_t{1} << 31) && n > 0);
  if (rows == 0) return;
  launch_rms_norm(out, x, weight, rows, n, eps, stream);
}

}  // namespace llmctl::kernels::cuda
