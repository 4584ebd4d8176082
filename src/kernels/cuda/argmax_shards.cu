// Greedy over a vocabulary split across tensor-parallel ranks, on the device
// (kernels.h: argmax_with_value, merge_argmax). Each rank reduces its slice
// of every row to (maximum, first global index), one block per row
// (row_argmax.cuh); after the ranks all_gather those pairs, one thread per row
// picks among the shards. Both prefer the larger value and, on ties, the
// smaller index, and NaN loses to any number, so the id equals a sequential
// first-maximum scan over the joined row.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/row_argmax.cuh"

namespace llmctl::kernels::cuda {
namespace {

constexpr int kRowThreads = 1024;
constexpr int kMergeThreads = 128;

// pairs[row] = (maximum, index_base + column) over the row's `valid` columns.
__global__ void __launch_bounds__(kRowThreads)
    argmax_with_value_kernel(float* pairs, const float* logits, int64_t row_stride, int32_t valid, int32_t index_base) {
  pdl_begin();
  const RowBest b = block_row_best(logits + static_cast<int64_t>(blockIdx.x) * row_stride, valid);
  if (threadIdx.x == 0) {
    float* out = pairs + 2 * static_cast<int64_t>(blockIdx.x);
    out[0] = b.index >= 0 ? b.value : quiet_nan();
    out[1] = __int_as_float(b.index >= 0 ? index_base + b.index : -1);
  }
}

// ids[r] = the best of the shards' pairs [num_shards, rows, 2] for row r.
__global__ void __launch_bounds__(kMergeThreads)
    merge_argmax_kernel(int32_t* ids, const float* pairs, int32_t num_shards, int32_t rows) {
  pdl_begin();
  const int32_t r = static_cast<int32_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  RowBest b{quiet_nan(), -1};
  for (int32_t s = 0; s < num_shards; ++s) {
    const float* p = pairs + 2 * (static_cast<int64_t>(s) * rows + r);
    const int32_t index = __float_as_int(p[1]);
    if (index >= 0 && row_better(p[0], index, b)) b = {p[0], index};
  }
  ids[r] = b.index >= 0 ? b.index : 0;
}

}  // namespace

void argmax_with_value(float* pairs, const float* logits, int64_t rows, int64_t row_stride, int64_t valid,
                       int64_t index_base, cudaStream_t stream) {
  CUDA_REQUIRE(rows >= 0 && rows < (int64_t{1} << 31) && valid >= 0 && valid <= row_stride && index_base >= 0 &&
               index_base + valid <= 2147483647);
  if (rows == 0) return;
  launch_kernel(argmax_with_value_kernel, static_cast<unsigned>(rows), kRowThreads, stream, pairs, logits, row_stride,
                static_cast<int32_t>(valid), static_cast<int32_t>(index_base));
  CUDA_CHECK_LAUNCH();
}

void merge_argmax(int32_t* ids, const float* pairs, int64_t num_shards, int64_t rows, cudaStream_t stream) {
  CUDA_REQUIRE(rows >= 0 && rows < (int64_t{1} << 31) && num_shards >= 1 && num_shards < (int64_t{1} << 31));
  if (rows == 0) return;
  const auto blocks = static_cast<unsigned>((rows + kMergeThreads - 1) / kMergeThreads);
  launch_kernel(merge_argmax_kernel, blocks, kMergeThreads, stream, ids, pairs, static_cast<int32_t>(num_shards),
                static_cast<int32_t>(rows));
  CUDA_CHECK_LAUNCH();
}

}  // namespace llmctl::kernels::cuda
