// The one CUDA_CHECK family. A failing CUDA or cuBLAS call, or a violated
// launch contract, is a programming error or a broken device: it prints the
// statement, file, line and device id and aborts. Recoverable failures (an
// allocation that does not fit) are checked by hand and returned as Status.
// Usable from .cu (C++17, nvcc) and .cpp (C++20) files alike.
#pragma once

#include <cublas_api.h>
#include <cuda_runtime.h>

namespace llmctl::kernels::cuda {

[[noreturn]] void cuda_fail(const char* what, const char* statement, const char* file, int line);

}  // namespace llmctl::kernels::cuda

#define CUDA_CHECK(stmt)                                                                       \
  do {                                                                                         \
    const cudaError_t llmctl_err_ = (stmt);                                                    \
    if (llmctl_err_ != cudaSuccess) {                                                          \
      ::llmctl::kernels::cuda::cuda_fail(cudaGetErrorString(llmctl_err_), #stmt, __FILE__, __LINE__); \
    }                                                                                          \
  } while (0)

#define CUBLAS_CHECK(stmt)                                                                     \
  do {                                                                                         \
    const cublasStatus_t llmctl_st_ = (stmt);                                                  \
    if (llmctl_st_ != CUBLAS_STATUS_SUCCESS) {                                                 \
      ::llmctl::kernels::cuda::cuda_fail(cublasGetStatusString(llmctl_st_), #stmt, __FILE__, __LINE__); \
    }                                                                                          \
  } while (0)

// After a kernel launch: reports launch-configuration errors at the launch.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

// A shape or argument contract of an op's public entry.
#define CUDA_REQUIRE(cond)                                                                     \
  do {                                                                                         \
    if (!(cond)) ::llmctl::kernels::cuda::cuda_fail("contract violated", #cond, __FILE__, __LINE__); \
  } while (0)
