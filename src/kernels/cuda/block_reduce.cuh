// Sum over a thread block for the row-wise kernels (RMSNorm). blockDim.x must
// be a multiple of 32 and at most 1024. Every thread gets the total.
#pragma once

namespace llmctl::kernels::cuda {

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float block_sum(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = warp_sum(v);
  __syncthreads();  // partial[] may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int num_warps = blockDim.x / 32;
  v = lane < num_warps ? partial[lane] : 0.0f;
  return warp_sum(v);
}

}  // namespace llmctl::kernels::cuda
