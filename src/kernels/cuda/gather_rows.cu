// Row gather: out[s, :] = x[indices[s], :] (the rows that need logits).
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.cuh"

namespace llmctl::kernels::cuda {
namespace {

struct GatherRowsLaunch {
  static constexpr int kThreads = 256;  // one block per output row
};

__global__ void gather_rows_kernel(float* out, const float* x, const int32_t* indices, int64_t width) {
  pdl_begin();
  const int64_t r = blockIdx.x;
  const float* src = x + static_cast<int64_t>(indices[r]) * width;
  float* dst = out + r * width;
  for (int64_t i = threadIdx.x; i < width; i += blockDim.x) dst[i] = src[i];
}

void launch_gather_rows(float* out, const float* x, const int32_t* indices, int64_t num_rows, int64_t width,
                        cudaStream_t stream) {
  launch_kernel(gather_rows_kernel, static_cast<unsigned>(num_rows), GatherRowsLaunch::kThreads, stream, out, x,
                indices, width);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void gather_rows(float* out, const float* x, const int32_t* indices, int64_t num_rows, int64_t width,
                 cudaStream_t stream) {
  CUDA_REQUIRE(num_rows >= 0 && num_rows < (int64_t{1} << 31) && width > 0);
  if (num_rows == 0) return;
  launch_gather_rows(out, x, indices, num_rows, width, stream);
}

}  // namespace llmctl::kernels::cuda
