// SwiGLU activation: out[t, i] = silu(gate_up[t, i]) * gate_up[t, F + i],
// in fp32, or bf16 in and out (gated_mlp's cuBLASLt path).
#include <cuda_bf16.h>

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

// bf16: eight values a thread through 16-byte loads when rows allow it
// (width % 8 == 0, as in every real model), else one.
template <int kVec>
__global__ void silu_and_mul_bf16_kernel(__nv_bfloat16* out, const __nv_bfloat16* gate_up, int64_t width) {
  pdl_begin();
  const int64_t t = blockIdx.x;
  const int64_t i = (static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x) * kVec;
  if (i >= width) return;
  const __nv_bfloat16* g = gate_up + t * 2 * width + i;
  const __nv_bfloat16* u = g + width;
  __nv_bfloat16* o = out + t * width + i;
  if constexpr (kVec == 8) {
    const uint4 gv = *reinterpret_cast<const uint4*>(g);
    const uint4 uv = *reinterpret_cast<const uint4*>(u);
    const auto* gh = reinterpret_cast<const __nv_bfloat162*>(&gv);
    const auto* uh = reinterpret_cast<const __nv_bfloat162*>(&uv);
    uint4 ov;
    auto* oh = reinterpret_cast<__nv_bfloat162*>(&ov);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float2 gf = __bfloat1622float2(gh[j]);
      const float2 uf = __bfloat1622float2(uh[j]);
      oh[j] = __floats2bfloat162_rn(gf.x / (1.0f + expf(-gf.x)) * uf.x, gf.y / (1.0f + expf(-gf.y)) * uf.y);
    }
    *reinterpret_cast<uint4*>(o) = ov;
  } else {
    const float gf = __bfloat162float(*g);
    *o = __float2bfloat16_rn(gf / (1.0f + expf(-gf)) * __bfloat162float(*u));
  }
}

template <int kVec>
void launch_silu_and_mul_bf16(__nv_bfloat16* out, const __nv_bfloat16* gate_up, int64_t num_tokens, int64_t width,
                              cudaStream_t stream) {
  const SiluAndMulLaunch cfg(num_tokens, width / kVec);
  launch_kernel(silu_and_mul_bf16_kernel<kVec>, cfg.grid, SiluAndMulLaunch::kThreads, stream, out, gate_up, width);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void silu_and_mul_bf16(__nv_bfloat16* out, const __nv_bfloat16* gate_up, int64_t num_tokens, int64_t width,
                       cudaStream_t stream) {
  CUDA_REQUIRE(num_tokens >= 0 && num_tokens < (int64_t{1} << 31) && width > 0 && width / 256 < 65535);
  if (num_tokens == 0) return;
  const bool aligned = width % 8 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(gate_up) % 16 == 0;
  if (aligned) {
    launch_silu_and_mul_bf16<8>(out, gate_up, num_tokens, width, stream);
  } else {
    launch_silu_and_mul_bf16<1>(out, gate_up, num_tokens, width, stream);
  }
}

void silu_and_mul(float* out, const float* gate_up, int64_t num_tokens, int64_t width, cudaStream_t stream) {
  CUDA_REQUIRE(num_tokens >= 0 && num_tokens < (int64_t{1} << 31) && width > 0 && width / 256 < 65535);
  if (num_tokens == 0) return;
  launch_silu_and_mul(out, gate_up, num_tokens, width, stream);
}

}  // namespace llmctl::kernels::cuda
