// fp32 / f16 -> bf16 conversion, round to nearest even: fp32 and f16
// checkpoints' weights at upload, and the activations the cuBLASLt path of
// linear() feeds to the tensor cores.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.cuh"

namespace llmctl::kernels::cuda {
namespace {

struct ConvertLaunch {
  static constexpr int kThreads = 256;
  static constexpr int64_t kMaxBlocks = 4096;  // grid-stride beyond this
  unsigned blocks;
  explicit ConvertLaunch(int64_t count) {
    const int64_t need = (count + kThreads - 1) / kThreads;
    blocks = static_cast<unsigned>(need < kMaxBlocks ? need : kMaxBlocks);
  }
};

__global__ void convert_to_bf16_kernel(__nv_bfloat16* __restrict__ dst, const float* __restrict__ src, int64_t count) {
  pdl_begin();
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    dst[i] = __float2bfloat16_rn(src[i]);
  }
}

// f16 -> fp32 is exact, so this rounds once, as the host's f16 -> fp32 ->
// bf16 does.
__global__ void convert_f16_to_bf16_kernel(__nv_bfloat16* __restrict__ dst, const __half* __restrict__ src,
                                           int64_t count) {
  pdl_begin();
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    dst[i] = __float2bfloat16_rn(__half2float(src[i]));
  }
}

}  // namespace

void convert_f16_to_bf16(__nv_bfloat16* dst, const __half* src, int64_t count, cudaStream_t stream) {
  CUDA_REQUIRE(count >= 0);
  if (count == 0) return;
  const ConvertLaunch cfg(count);
  launch_kernel(convert_f16_to_bf16_kernel, cfg.blocks, ConvertLaunch::kThreads, stream, dst, src, count);
  CUDA_CHECK_LAUNCH();
}

void convert_to_bf16(__nv_bfloat16* dst, const float* src, int64_t count, cudaStream_t stream) {
  CUDA_REQUIRE(count >= 0);
  if (count == 0) return;
  const ConvertLaunch cfg(count);
  launch_kernel(convert_to_bf16_kernel, cfg.blocks, ConvertLaunch::kThreads, stream, dst, src, count);
  CUDA_CHECK_LAUNCH();
}

}  // namespace llmctl::kernels::cuda
