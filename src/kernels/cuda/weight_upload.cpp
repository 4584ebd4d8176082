#include "kernels/cuda/weight_upload.h"

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

namespace llmctl::kernels::cuda {
namespace {

// One thread faults in and copies about 2-4 GB/s of mapped page cache; a
// chunk split over several reaches the DMA's speed.
constexpr std::size_t kMinBytesPerThread = std::size_t{4} << 20;
constexpr unsigned kMaxCopyThreads = 8;

void parallel_copy(void* dst, const void* src, std::size_t bytes) {
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const auto by_size = static_cast<unsigned>(std::max<std::size_t>(1, bytes / kMinBytesPerThread));
  const unsigned n = std::min({hw, kMaxCopyThreads, by_size});
  if (n <= 1) {
    std::memcpy(dst, src, bytes);
    return;
  }
  const std::size_t part = (bytes + n - 1) / n;
  std::vector<std::thread> threads;
  threads.reserve(n - 1);
  for (unsigned i = 1; i < n; ++i) {
    const std::size_t begin = std::min(bytes, i * part), end = std::min(bytes, begin + part);
    threads.emplace_back([=] {
      std::memcpy(static_cast<char*>(dst) + begin, static_cast<const char*>(src) + begin, end - begin);
    });
  }
  std::memcpy(dst, src, std::min(bytes, part));
  for (std::thread& t : threads) t.join();
}

}  // namespace

void WeightUploader::upload(__nv_bfloat16* dst, const void* src, WeightDtype src_dtype, std::size_t count,
                            cudaStream_t stream) {
  if (count == 0) return;
  const std::size_t element = weight_dtype_size_bytes(src_dtype);
  const std::size_t chunk = kSlotBytes / element;
  // fp32 and f16 land in a device staging buffer first and are converted
  // from there (the host never holds a second, converted copy).
  void* staging = nullptr;
  if (src_dtype != WeightDtype::kBF16) {
    CUDA_CHECK(cudaMallocAsync(&staging, std::min(count, chunk) * element * kSlots, stream));
  }
  const auto* in = static_cast<const char*>(src);
  for (std::size_t done = 0; done < count; done += chunk) {
    const std::size_t n = std::min(chunk, count - done);
    const int index = slots_.acquire();
    void* host = slots_.host(index);
    parallel_copy(host, in + done * element, n * element);
    if (src_dtype == WeightDtype::kBF16) {
      CUDA_CHECK(cudaMemcpyAsync(dst + done, host, n * element, cudaMemcpyHostToDevice, stream));
    } else {
      void* device = static_cast<char*>(staging) + static_cast<std::size_t>(index) * std::min(count, chunk) * element;
      CUDA_CHECK(cudaMemcpyAsync(device, host, n * element, cudaMemcpyHostToDevice, stream));
      if (src_dtype == WeightDtype::kF32) {
        convert_to_bf16(dst + done, static_cast<const float*>(device), static_cast<int64_t>(n), stream);
      } else {
        convert_f16_to_bf16(dst + done, static_cast<const __half*>(device), static_cast<int64_t>(n), stream);
      }
    }
    slots_.release_after(index, stream);
  }
  if (staging != nullptr) CUDA_CHECK(cudaFreeAsync(staging, stream));
}

}  // namespace llmctl::kernels::cuda
