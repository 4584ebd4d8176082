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

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/cuda_check.h"

namespace llmctl::kernels::cuda {

__device__ __forceinline__ void pdl_trigger() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }
__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ void pdl_begin() {
  pdl_trigger();
  pdl_wait();
}

// Lets kKernel take `smem_bytes` of dynamic shared memory (above 48 KiB a
// kernel must opt in) with the largest shared-memory carveout, once per
// device: the attributes belong to the function on each device.
template <auto kKernel>
void allow_dynamic_smem(int smem_bytes) {
  static std::atomic<uint64_t> configured{0};  // bit d: device d (mod 64)
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  const uint64_t bit = uint64_t{1} << (device % 64);
  if ((configured.load(std::memory_order_acquire) & bit) != 0) return;
  CUDA_CHECK(cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes));
  CUDA_CHECK(cudaFuncSetAttribute(kKernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                  static_cast<int>(cudaSharedmemCarveoutMaxShared)));
  configured.fetch_or(bit, std::memory_order_release);
}

// With `smem_bytes` of dynamic shared memory (above 48 KiB the kernel must
// have opted in: allow_dynamic_smem).
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
