// Fused residual add and RMSNorm: residual[r, :] += x[r, :], then
// out[r, :] = rms_norm(residual[r, :]) * weight. One block per row; each
// thread re-reads only residual elements it wrote itself, so no barrier is
// needed between the add and the scale.
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.cuh"

namespace llmctl::kernels::cuda {
namespace {

struct AddRmsNormLaunch {
  int threads = 0;
  explicit AddRmsNormLaunch(int64_t n) {
    const int64_t rounded = (n + 31) / 32 * 32;
    threads = static_cast<int>(rounded < 32 ? 32 : (rounded > 1024 ? 1024 : rounded));
  }
};

__global__ void add_rms_norm_kernel(float* out, float* residual, const float* x, const float* weight, int64_t n,
                                    float eps) {
  pdl_begin();
  const int64_t r = blockIdx.x;
  float* res = residual + r * n;
  const float* xr = x + r * n;
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float v = res[i] + xr[i];
    res[i] = v;
    sum += v * v;
  }
  const float inv = rsqrtf(block_sum(sum) / static_cast<float>(n) + eps);
  float* o = out + r * n;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) o[i] = weight[i] * (res[i] * inv);
}

void launch_add_rms_norm(float* out, float* residual, const float* x, const float* weight, int64_t rows, int64_t n,
                         float eps, cudaStream_t stream) {
  const AddRmsNormLaunch cfg(n);
  launch_kernel(add_rms_norm_kernel, static_cast<unsigned>(rows), cfg.threads, stream, out, residual, x, weight, n,
                eps);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void add_rms_norm(float* out, float* residual, const float* x, const float* weight, int64_t rows, int64_t n, float eps,
                  cudaStream_t stream) {
  CUDA_REQUIRE(rows >= 0 && rows < (int64_t{1} << 31) && n > 0);
  CUDA_REQUIRE(out != residual);
  if (rows == 0) return;
  launch_add_rms_norm(out, residual, x, weight, rows, n, eps, stream);
}

}  // namespace llmctl::kernels::cuda
