#include "kernels/backend_factory.h"

#include <charconv>
#include <string>

#if defined(LLMCTL_WITH_CUDA)
#include "kernels/cuda_backend.h"
#endif

namespace llmctl::kernels {
namespace {

Result<std::unique_ptr<Backend>> make_cuda(int device, void* stream) {
#if defined(LLMCTL_WITH_CUDA)
  return make_cuda_backend(device, stream);
#else
  (void)device;
  (void)stream;
  return Status::unavailable("--device cuda: this llmctl was built without the CUDA backend (LLMCTL_CUDA=OFF)");
#endif
}

bool has_gpu() {
#if defined(LLMCTL_WITH_CUDA)
  return cuda_device_count() > 0;
#else
  return false;
#endif
}

}  // namespace

Result<std::unique_ptr<Backend>> make_backend(std::string_view device, int num_threads, void* cuda_stream) {
  if (device == "cpu") return make_cpu_backend(num_threads);
  if (device == "auto") return has_gpu() ? make_cuda(0, cuda_stream) : Result<std::unique_ptr<Backend>>(make_cpu_backend(num_threads));
  if (device == "cuda") return make_cuda(0, cuda_stream);
  if (device.substr(0, 5) == "cuda:") {
    const std::string_view digits = device.substr(5);
    int index = -1;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (ec == std::errc() && end == digits.data() + digits.size() && !digits.empty() && index >= 0) {
      return make_cuda(index, cuda_stream);
    }
  }
  return Status::invalid_argument("--device " + std::string(device) + ": expected cpu, cuda, cuda:N or auto");
}

}  // namespace llmctl::kernels
