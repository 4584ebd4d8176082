// A ring of pinned host buffers for host-to-device copies queued on a
// stream. A copy from pageable memory makes the host wait for the device;
// from a pinned slot it is only queued, so the host can fill the next slot
// (or prepare the next step) meanwhile. A slot is handed out again only
// after the work queued from it has run (one event per slot). Used for
// weights at start-up (weight_upload.h) and for each step's small inputs
// (CudaBackend::copy_to_device). Not while the stream is being captured
// into a graph: the graph would keep reading the slot's address.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <vector>

namespace llmctl::kernels::cuda {

class PinnedSlotRing {
 public:
  // Pinned memory is taken per slot at its first use.
  PinnedSlotRing(int slots, std::size_t slot_bytes);
  PinnedSlotRing(const PinnedSlotRing&) = delete;
  PinnedSlotRing& operator=(const PinnedSlotRing&) = delete;
  // Waits for the slots' copies; the caller has bound the device.
  ~PinnedSlotRing();

  std::size_t slot_bytes() const { return slot_bytes_; }
  // The next slot, once the work last queued from it has run.
  int acquire();
  void* host(int slot) const { return slots_[static_cast<std::size_t>(slot)].host; }
  // `slot` stays taken until the work queued on `stream` so far has run.
  void release_after(int slot, cudaStream_t stream);

 private:
  struct Slot {
    void* host = nullptr;
    cudaEvent_t done = nullptr;
    bool in_flight = false;
  };

  std::vector<Slot> slots_;
  std::size_t slot_bytes_;
  int next_ = 0;
};

}  // namespace llmctl::kernels::cuda
