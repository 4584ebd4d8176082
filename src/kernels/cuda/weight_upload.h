// Checkpoint weights to bf16 device memory at start-up speed. The host side
// of a load is reading the page cache through the mapped safetensors files;
// the device side is DMA from pinned memory. So each chunk is copied by a
// few host threads into one of a ring of pinned staging slots while the
// previous slots' DMA (and, for fp32 / f16 sources, the conversion kernel)
// runs on the stream. bf16 goes to its destination as-is.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>

#include "kernels/cuda/pinned_slot_ring.h"
#include "kernels/kernels.h"

namespace llmctl::kernels::cuda {

class WeightUploader {
 public:
  WeightUploader() = default;
  WeightUploader(const WeightUploader&) = delete;
  WeightUploader& operator=(const WeightUploader&) = delete;

  // dst[0, count) = bf16(src elements of src_dtype), enqueued on `stream`.
  // src (any alignment) is fully read when this returns; the device work is
  // still queued (ordered before later work on the stream).
  void upload(__nv_bfloat16* dst, const void* src, WeightDtype src_dtype, std::size_t count, cudaStream_t stream);

 private:
  static constexpr int kSlots = 3;
  // Large enough that a DMA runs at full PCIe speed, small enough that the
  // pipeline fills quickly (96 MiB of pinned host memory in all).
  static constexpr std::size_t kSlotBytes = std::size_t{32} << 20;

  PinnedSlotRing slots_{kSlots, kSlotBytes};
};

}  // namespace llmctl::kernels::cuda
