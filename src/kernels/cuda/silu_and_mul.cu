// SwiGLU activation: out[t, i] = silu(gate_up[t, i]) * gate_up[t, F + i].
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.cuh"

namespace llmctl::kernels::cuda {
namespace {

struct SiluAndMulLaunch {
  static constexpr int kThreads = 256;
  dim3 grid;
  SiluAndMulLaunch(int64_t num_tokens, int64_t width)
      : grid(static_cast<unsigned>(num_tokens), static_cast<unsigned>((width + kThreads - 1) / kThreads)) {}
};

__global__ void silu_and_mul_kernel(float* out, const float* gate_up, int64_t width) {
  pdl_begin();
  const int64_t t = blockIdx.x;
  const int64_t i = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (i >= width) return;
  const float g = gate_up[t * 2 * width + i];
  const float u = gate_up[t * 2 * width + width + i];
  out[t * width + i] = g / (1.0f + expf(-g)) * u;
}

void launch_silu_and_mul(float* out, const float* gate_up, int64_t num_tokens, int64_t width, cudaStream_t stream) {
  const SiluAndMulLaunch cfg(num_tokens, width);
  launch_kernel(silu_and_mul_kernel, cfg.grid, SiluAndMulLaunch::kThreads, stream, out, gate_up, width);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void silu_and_mul(float* out, const float* gate_up, int64_t num_tokens, int64_t width, cudaStream_t stream) {
  CUDA_REQUIRE(num_tokens >= 0 && num_tokens < (int64_t{1} << 31) && width > 0 && width / 256 < 65535);
  if (num_tokens == 0) return;
  launch_silu_and_mul(out, gate_up, num_tokens, width, stream);
}

}  // namespace llmctl::kernels::cuda
