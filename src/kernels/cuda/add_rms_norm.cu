// Fused residual add and RMSNorm: residual[r, :] += x[r, :], then
// out[r, :] = rms_norm(residual[r, :]) * weight. One block per row. Rows up
// to kMaxRegisterRow keep their elements (and the weights, loaded before
// the reduction) in registers: every load is issued before the first store,
// so a decode row costs a few memory round trips, not one per element
// group. Longer rows take a looping variant whose threads re-read only
// residual elements they wrote themselves.
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.cuh"

namespace llmctl::kernels::cuda {
namespace {

struct AddRmsNormLaunch {
  static constexpr int kPerThread = 8;
  static constexpr int64_t kMaxRegisterRow = 1024 * kPerThread;
  int threads = 0;
  explicit AddRmsNormLaunch(int64_t n) {
    const int64_t per_thread = n <= kMaxRegisterRow ? kPerThread : 1;
    const int64_t rounded = ((n + per_thread - 1) / per_thread + 31) / 32 * 32;
    threads = static_cast<int>(rounded < 32 ? 32 : (rounded > 1024 ? 1024 : rounded));
  }
};

__global__ void add_rms_norm_registers_kernel(float* out, float* residual, const float* x, const float* weight,
                                              int64_t n, float eps) {
  pdl_trigger();
  constexpr int kPerThread = AddRmsNormLaunch::kPerThread;
  const int64_t r = blockIdx.x;
  float* res = residual + r * n;
  const float* xr = x + r * n;
  float v[kPerThread], w[kPerThread];
  // The norm weights no kernel writes: loaded while the predecessor drains.
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(j) * blockDim.x;
    w[j] = i < n ? weight[i] : 0.0f;
  }
  pdl_wait();
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(j) * blockDim.x;
    v[j] = i < n ? res[i] + xr[i] : 0.0f;
  }
  float sum = 0.0f;
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(j) * blockDim.x;
    if (i < n) res[i] = v[j];
    sum += v[j] * v[j];
  }
  const float inv = rsqrtf(block_sum(sum) / static_cast<float>(n) + eps);
  float* o = out + r * n;
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(j) * blockDim.x;
    if (i < n) o[i] = w[j] * (v[j] * inv);
  }
}

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
  if (n <= AddRmsNormLaunch::kMaxRegisterRow) {
    launch_kernel(add_rms_norm_registers_kernel, static_cast<unsigned>(rows), cfg.threads, stream, out, residual, x,
                  weight, n, eps);
  } else {
    launch_kernel(add_rms_norm_kernel, static_cast<unsigned>(rows), cfg.threads, stream, out, residual, x, weight, n,
                  eps);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void add_rms_norm(float* out, float* residual, const float* x, const float* weight, int64_t rows, int64_t n,
                  float eps, cudaStream_t stream) {
  CUDA_REQUIRE(rows >= 0 && rows < (int64_t{1} << 31) && n > 0);
  CUDA_REQUIRE(out != residual);
  if (rows == 0) return;
  launch_add_rms_norm(out, residual, x, weight, rows, n, eps, stream);
}

}  // namespace llmctl::kernels::cuda
