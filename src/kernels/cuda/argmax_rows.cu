// Greedy sampling on the device: per row of logits, the first index of the
// maximum (row_argmax.cuh), one block per row.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/row_argmax.cuh"

namespace llmctl::kernels::cuda {
namespace {

constexpr int kThreads = 1024;

__global__ void __launch_bounds__(kThreads) argmax_rows_kernel(int32_t* ids, const float* logits, int32_t vocab) {
  pdl_begin();
  const RowBest b = block_row_best(logits + static_cast<int64_t>(blockIdx.x) * vocab, vocab);
  // An all-NaN row has no index; answer 0 as a sequential scan would.
  if (threadIdx.x == 0) ids[blockIdx.x] = b.index >= 0 ? b.index : 0;
}

}  // namespace

void argmax_rows(int32_t* ids, const float* logits, int64_t rows, int64_t vocab, cudaStream_t stream) {
  CUDA_REQUIRE(rows >= 0 && rows < (int64_t{1} << 31) && vocab > 0 && vocab <= 2147483647);
  if (rows == 0) return;
  launch_kernel(argmax_rows_kernel, static_cast<unsigned>(rows), kThreads, stream, ids, logits,
                static_cast<int32_t>(vocab));
  CUDA_CHECK_LAUNCH();
}

}  // namespace llmctl::kernels::cuda
