// Which compute backends this binary was built with, and the versions of the
// CUDA libraries it was compiled against (and, for NCCL, loaded at run time).
#pragma once

#include <string>

namespace llmctl {

struct BackendInfo {
  bool cuda = false;           // the CUDA backend is compiled in
  std::string cuda_runtime;    // "13.0" (cudart, linked statically)
  std::string cublas;          // "13.0.0" compiled against
  std::string nccl_compiled;   // "2.28.3" compiled against
  std::string nccl_runtime;    // "2.28.3" as loaded; empty when not loadable
};

BackendInfo backend_info();

}  // namespace llmctl
