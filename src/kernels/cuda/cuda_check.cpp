#include "kernels/cuda/cuda_check.h"

#include <cstdio>
#include <cstdlib>

namespace llmctl::kernels::cuda {

void cuda_fail(const char* what, const char* statement, const char* file, int line) {
  int device = -1;
  (void)cudaGetDevice(&device);  // best effort: the device may be what broke
  std::fprintf(stderr, "CUDA error: %s\n  in %s\n  at %s:%d (device %d)\n", what, statement, file, line, device);
  std::fflush(stderr);
  std::abort();
}

}  // namespace llmctl::kernels::cuda
