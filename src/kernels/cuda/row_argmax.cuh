// The first maximum of one row, reduced by a whole block: what greedy
// sampling (argmax_rows.cu) and the tensor-parallel shard pick
// (argmax_shards.cu) share. Larger values win, ties go to the smaller index
// and NaN loses to any number, so the answer equals a sequential
// first-maximum scan.
#pragma once

#include <cstdint>

namespace llmctl::kernels::cuda {

struct RowBest {
  float value;
  int32_t index;  // -1: none yet (an empty or all-NaN row)
};

__device__ __forceinline__ float quiet_nan() { return __int_as_float(0x7fc00000); }

__device__ __forceinline__ bool row_better(float v, int32_t i, const RowBest& b) {
  if (v != v) return false;  // NaN
  if (b.index < 0 || b.value != b.value) return true;
  return v > b.value || (v == b.value && i < b.index);
}

__device__ __forceinline__ RowBest warp_row_best(RowBest b) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    const float v = __shfl_xor_sync(0xffffffffu, b.value, offset);
    const int32_t i = __shfl_xor_sync(0xffffffffu, b.index, offset);
    if (i >= 0 && row_better(v, i, b)) b = {v, i};
  }
  return b;
}

// Every thread of the block calls it (blockDim.x a multiple of 32, at most
// 1024); the result is meaningful in thread 0 only.
__device__ __forceinline__ RowBest block_row_best(const float* row, int32_t n) {
  __shared__ float values[32];
  __shared__ int32_t indices[32];
  RowBest b{quiet_nan(), -1};
  for (int32_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float v = row[i];
    if (row_better(v, i, b)) b = {v, i};
  }
  b = warp_row_best(b);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) {
    values[warp] = b.value;
    indices[warp] = b.index;
  }
  __syncthreads();
  if (warp == 0) {
    const int num_warps = blockDim.x / 32;
    b = lane < num_warps ? RowBest{values[lane], indices[lane]} : RowBest{quiet_nan(), -1};
    b = warp_row_best(b);
  }
  return b;
}

}  // namespace llmctl::kernels::cuda
