// A step's small host-to-device copies (its packed inputs, the sampling
// rows' settings) without the host waiting: a copy from pageable memory is
// synchronous with the device, so the engine could not prepare the next
// step while this one runs. Each copy goes into one of a ring of pinned
// slots and its DMA is queued on the stream; the caller's memory is free at
// once, and a slot is reused only after its copy ran (one event per slot).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

namespace llmctl::kernels::cuda {

class PinnedUploadRing {
 public:
  // Large enough for a 256-sequence decode batch's inputs with 8k-token
  // block tables; 16 MiB of pinned host memory in all, taken at first use.
  static constexpr int kSlots = 4;
  static constexpr std::size_t kSlotBytes = std::size_t{4} << 20;

  PinnedUploadRing() = default;
  PinnedUploadRing(const PinnedUploadRing&) = delete;
  PinnedUploadRing& operator=(const PinnedUploadRing&) = delete;
  // Waits for the slots' copies; the caller has bound the device.
  ~PinnedUploadRing();

  // Queues dst[0, n) = src[0, n) on `stream`, src read before returning.
  // False (nothing done) when n exceeds a slot: the caller copies otherwise.
  // Not while the stream is being captured into a graph (the graph would
  // keep the slot's address).
  bool upload(void* dst, const void* src, std::size_t n, cudaStream_t stream);

 private:
  struct Slot {
    void* host = nullptr;  // pinned
    cudaEvent_t done = nullptr;
    bool in_flight = false;
  };

  Slot slots_[kSlots];
  int next_ = 0;
};

}  // namespace llmctl::kernels::cuda
