// Greedy sampling on the device: per row of logits, the first index of the
// maximum. One block per row; each thread keeps its best (value, index) over
// a strided slice, then warps and the block reduce, preferring the larger
// value and, on ties, the smaller index, so the result equals a sequential
// first-maximum scan. NaN compares as smaller than everything.
#include <cfloat>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.cuh"

namespace llmctl::kernels::cuda {
namespace {

constexpr int kThreads = 1024;

struct Best {
  float value;
  int64_t index;
};

__device__ __forceinline__ bool better(float v, int64_t i, const Best& b) {
  if (v != v) return false;  // NaN
  if (b.value != b.value) return true;
  return v > b.value || (v == b.value && i < b.index);
}

__device__ __forceinline__ Best warp_best(Best b) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    const float v = __shfl_xor_sync(0xffffffffu, b.value, offset);
    const int64_t i = __shfl_xor_sync(0xffffffffu, b.index, offset);
    if (better(v, i, b)) b = {v, i};
  }
  return b;
}

__global__ void __launch_bounds__(kThreads) argmax_rows_kernel(int32_t* ids, const float* logits, int64_t vocab) {
  pdl_begin();
  __shared__ float values[32];
  __shared__ int64_t indices[32];
  const float* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  Best b{__int_as_float(0x7fc00000), vocab};  // NaN: anything real beats it
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float v = row[i];
    if (better(v, i, b)) b = {v, i};
  }
  b = warp_best(b);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) {
    values[warp] = b.value;
    indices[warp] = b.index;
  }
  __syncthreads();
  if (warp == 0) {
    const int num_warps = blockDim.x / 32;
    b = lane < num_warps ? Best{values[lane], indices[lane]} : Best{__int_as_float(0x7fc00000), vocab};
    b = warp_best(b);
    // An all-NaN row keeps index `vocab`; answer 0 as a sequential scan would.
    if (lane == 0) ids[blockIdx.x] = static_cast<int32_t>(b.index < vocab ? b.index : 0);
  }
}

}  // namespace

void argmax_rows(int32_t* ids, const float* logits, int64_t rows, int64_t vocab, cudaStream_t stream) {
  CUDA_REQUIRE(rows >= 0 && rows < (int64_t{1} << 31) && vocab > 0 && vocab <= 2147483647);
  if (rows == 0) return;
  launch_kernel(argmax_rows_kernel, static_cast<unsigned>(rows), kThreads, stream, ids, logits, vocab);
  CUDA_CHECK_LAUNCH();
}

}  // namespace llmctl::kernels::cuda
