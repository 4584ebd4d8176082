// Linear layer: out[T, N] = x[T, K] * w[N, K]^T (+ bias[N]) through cuBLAS in
// full fp32 (the handle keeps CUBLAS_DEFAULT_MATH: no TF32, so greedy tokens
// match the CPU backend). Row-major out^T is column-major out, so the call
// is out(N x T) = w^T(N x K) * x(K x T) with w read as column-major K x N.
// A single token takes the GEMV path, which is what decode is.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

namespace llmctl::kernels::cuda {
namespace {

struct BiasLaunch {
  static constexpr int kThreads = 256;
  dim3 grid;
  BiasLaunch(int64_t num_tokens, int64_t n)
      : grid(static_cast<unsigned>(num_tokens), static_cast<unsigned>((n + kThreads - 1) / kThreads)) {}
};

__global__ void add_bias_kernel(float* out, const float* bias, int64_t n) {
  const int64_t t = blockIdx.x;
  const int64_t i = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (i < n) out[t * n + i] += bias[i];
}

void launch_linear(float* out, const float* x, const float* w, const float* bias, int64_t num_tokens, int64_t n,
                   int64_t k, cublasHandle_t cublas, cudaStream_t stream) {
  const float one = 1.0f, zero = 0.0f;
  const int m32 = static_cast<int>(n), k32 = static_cast<int>(k), t32 = static_cast<int>(num_tokens);
  if (num_tokens == 1) {
    CUBLAS_CHECK(cublasSgemv(cublas, CUBLAS_OP_T, k32, m32, &one, w, k32, x, 1, &zero, out, 1));
  } else {
    CUBLAS_CHECK(cublasSgemm(cublas, CUBLAS_OP_T, CUBLAS_OP_N, m32, t32, k32, &one, w, k32, x, k32, &zero, out, m32));
  }
  if (bias != nullptr) {
    const BiasLaunch cfg(num_tokens, n);
    add_bias_kernel<<<cfg.grid, BiasLaunch::kThreads, 0, stream>>>(out, bias, n);
    CUDA_CHECK_LAUNCH();
  }
}

}  // namespace

void linear(float* out, const float* x, const float* w, const float* bias, int64_t num_tokens,
            int64_t out_features, int64_t in_features, cublasHandle_t cublas, cudaStream_t stream) {
  constexpr int64_t kIntMax = 2147483647;
  CUDA_REQUIRE(num_tokens >= 0 && num_tokens <= kIntMax);
  CUDA_REQUIRE(out_features > 0 && out_features <= kIntMax && in_features > 0 && in_features <= kIntMax);
  CUDA_REQUIRE(out_features / 256 < 65535);
  if (num_tokens == 0) return;
  launch_linear(out, x, w, bias, num_tokens, out_features, in_features, cublas, stream);
}

}  // namespace llmctl::kernels::cuda
