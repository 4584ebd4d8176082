// Backend facts for a CUDA build: compile-time versions of cudart, cuBLAS and
// NCCL, and the NCCL version actually loaded.
#include <cublas_api.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <string>

#include "kernels/backend_info.h"

namespace llmctl {
namespace {

std::string dotted(int major, int minor, int patch) {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

}  // namespace

BackendInfo backend_info() {
  BackendInfo info;
  info.cuda = true;
  info.cuda_runtime = std::to_string(CUDART_VERSION / 1000) + "." + std::to_string((CUDART_VERSION % 1000) / 10);
  info.cublas = dotted(CUBLAS_VER_MAJOR, CUBLAS_VER_MINOR, CUBLAS_VER_PATCH);
  info.nccl_compiled = dotted(NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH);
  int v = 0;
  if (ncclGetVersion(&v) == ncclSuccess && v > 0) {
    // NCCL >= 2.9 encodes major*10000 + minor*100 + patch.
    info.nccl_runtime = dotted(v / 10000, (v % 10000) / 100, v % 100);
  }
  return info;
}

}  // namespace llmctl
