// Kernel launches with programmatic dependent launch (PDL, sm_90): a kernel
// may be launched while the one before it on the stream is still running, so
// launch latency and block scheduling overlap the predecessor's tail instead
// of adding to every step's dozens of small kernels. The price is a
// contract on every kernel launched this way: it calls pdl_begin() before
// touching global memory; pdl_begin() lets the next kernel launch, then
// waits until this one's predecessor has completed and its writes are
// visible. A kernel may instead call pdl_trigger(), read memory no kernel
// writes (weights) while its predecessor still runs, then pdl_wait() before
// anything else. Kernels not launched this way see all three as no-ops.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "kernels/cuda/cuda_check.h"

namespace llmctl::kernels::cuda {

__device__ __forceinline__ void pdl_trigger() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }
__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ void pdl_begin() {
  pdl_trigger();
  pdl_wait();
}

// With `smem_bytes` of dynamic shared memory (above 48 KiB the kernel must
// have opted in with cudaFuncAttributeMaxDynamicSharedMemorySize).
template <typename... Params, typename... Args>
void launch_kernel_smem(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t smem_bytes, cudaStream_t stream,
                        Args... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem_bytes;
  config.stream = stream;
  cudaLaunchAttribute attribute[1] = {};
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attribute;
  config.numAttrs = 1;
  CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, static_cast<Params>(args)...));
}

template <typename... Params, typename... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream, Args... args) {
  launch_kernel_smem(kernel, grid, block, 0, stream, args...);
}

}  // namespace llmctl::kernels::cuda
