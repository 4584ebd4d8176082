// Copying a tile of consecutive keys' K and V rows for one KV head from the
// paged bf16 cache into shared memory with cp.async, shared by the tensor-
// core attention kernels (decode_attention.cu, flash_prefill.cu). Each row
// goes as D / 8 pieces of 16 bytes; rows at or past `end` are zeroed
// instead, since a zero probability times stale bits could be NaN. The
// copies are committed as one cp.async group; the caller waits for it
// (__pipeline_wait_prior) and then synchronises the block.
#pragma once

#include <cuda_bf16.h>
#include <cuda_pipeline_primitives.h>

#include <cstdint>

namespace llmctl::kernels::cuda {

// Keys first .. first + kRows - 1 into sk / sv (row pitch kLd bf16). The
// cache row of key j is table[j / block_size] * block_size + j % block_size,
// this head's D elements at kv_offset within a row of kv_row elements.
template <int D, int kRows, int kThreads, int kLd>
__device__ __forceinline__ void copy_kv_tile(__nv_bfloat16* sk, __nv_bfloat16* sv, const __nv_bfloat16* k_cache,
                                             const __nv_bfloat16* v_cache, const int32_t* table, int block_size,
                                             int64_t first, int64_t end, int64_t kv_row, int64_t kv_offset) {
  constexpr int kPieces = D / 8;  // 16-byte pieces per row
  constexpr int kRowsPerPass = kThreads / kPieces;
  static_assert(kThreads % kPieces == 0, "every thread copies the same piece of its rows");
  const int c = (threadIdx.x % kPieces) * 8;
#pragma unroll
  for (int r = threadIdx.x / kPieces; r < kRows; r += kRowsPerPass) {
    const int64_t j = first + r;
    __nv_bfloat16* dk = sk + r * kLd + c;
    __nv_bfloat16* dv = sv + r * kLd + c;
    if (j < end) {
      const int64_t slot = static_cast<int64_t>(table[j / block_size]) * block_size + j % block_size;
      const int64_t off = slot * kv_row + kv_offset + c;
      __pipeline_memcpy_async(dk, k_cache + off, 16);
      __pipeline_memcpy_async(dv, v_cache + off, 16);
    } else {
      *reinterpret_cast<uint4*>(dk) = make_uint4(0, 0, 0, 0);
      *reinterpret_cast<uint4*>(dv) = make_uint4(0, 0, 0, 0);
    }
  }
  __pipeline_commit();
}

// The double-buffered walk over tiles: before the block uses tile t of
// num_tiles (in stage t & 1), starts copying tile t + 1 into the other stage
// (load(t + 1, stage), one committed group), waits for tile t's copies and
// makes them visible to the whole block.
template <typename Load>
__device__ __forceinline__ void await_kv_tile(int t, int num_tiles, Load&& load) {
  if (t + 1 < num_tiles) {
    load(t + 1, (t & 1) ^ 1);
    __pipeline_wait_prior(1);
  } else {
    __pipeline_wait_prior(0);
  }
  __syncthreads();
}

}  // namespace llmctl::kernels::cuda
