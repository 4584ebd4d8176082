// Backend facts for a build without CUDA.
#include "kernels/backend_info.h"

namespace llmctl {

BackendInfo backend_info() { return {}; }

}  // namespace llmctl
