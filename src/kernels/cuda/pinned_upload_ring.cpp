#include "kernels/cuda/pinned_upload_ring.h"

#include <cstring>

#include "kernels/cuda/cuda_check.h"

namespace llmctl::kernels::cuda {

PinnedUploadRing::~PinnedUploadRing() {
  // Best effort, as the backend's destructor: never abort on shutdown.
  for (Slot& slot : slots_) {
    if (slot.done != nullptr) {
      (void)cudaEventSynchronize(slot.done);
      (void)cudaEventDestroy(slot.done);
    }
    if (slot.host != nullptr) (void)cudaFreeHost(slot.host);
  }
}

bool PinnedUploadRing::upload(void* dst, const void* src, std::size_t n, cudaStream_t stream) {
  if (n > kSlotBytes) return false;
  if (n == 0) return true;
  Slot& slot = slots_[next_];
  next_ = (next_ + 1) % kSlots;
  if (slot.host == nullptr) {
    CUDA_CHECK(cudaHostAlloc(&slot.host, kSlotBytes, cudaHostAllocDefault));
    CUDA_CHECK(cudaEventCreateWithFlags(&slot.done, cudaEventDisableTiming));
  }
  // A step makes a few copies: the ring rarely comes round before its
  // oldest copy has run, so this almost never waits.
  if (slot.in_flight) CUDA_CHECK(cudaEventSynchronize(slot.done));
  std::memcpy(slot.host, src, n);
  CUDA_CHECK(cudaMemcpyAsync(dst, slot.host, n, cudaMemcpyDefault, stream));
  CUDA_CHECK(cudaEventRecord(slot.done, stream));
  slot.in_flight = true;
  return true;
}

}  // namespace llmctl::kernels::cuda
