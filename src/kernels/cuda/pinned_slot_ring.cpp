#include "kernels/cuda/pinned_slot_ring.h"

#include "kernels/cuda/cuda_check.h"

namespace llmctl::kernels::cuda {

PinnedSlotRing::PinnedSlotRing(int slots, std::size_t slot_bytes)
    : slots_(static_cast<std::size_t>(slots)), slot_bytes_(slot_bytes) {}

PinnedSlotRing::~PinnedSlotRing() {
  // Best effort, as the backend's destructor: never abort on shutdown.
  for (Slot& slot : slots_) {
    if (slot.done != nullptr) {
      (void)cudaEventSynchronize(slot.done);
      (void)cudaEventDestroy(slot.done);
    }
    if (slot.host != nullptr) (void)cudaFreeHost(slot.host);
  }
}

int PinnedSlotRing::acquire() {
  const int index = next_;
  next_ = (next_ + 1) % static_cast<int>(slots_.size());
  Slot& slot = slots_[static_cast<std::size_t>(index)];
  if (slot.host == nullptr) {
    CUDA_CHECK(cudaHostAlloc(&slot.host, slot_bytes_, cudaHostAllocDefault));
    CUDA_CHECK(cudaEventCreateWithFlags(&slot.done, cudaEventDisableTiming));
  }
  if (slot.in_flight) CUDA_CHECK(cudaEventSynchronize(slot.done));
  slot.in_flight = false;
  return index;
}

void PinnedSlotRing::release_after(int slot, cudaStream_t stream) {
  Slot& s = slots_[static_cast<std::size_t>(slot)];
  CUDA_CHECK(cudaEventRecord(s.done, stream));
  s.in_flight = true;
}

}  // namespace llmctl::kernels::cuda
