// Reads of the bf16 KV cache into fp32 registers, shared by the attention
// kernels. A lane reads N consecutive elements of a K or V row in one
// N * 2-byte load (cache rows are whole heads of even length and the cache
// is 256-byte aligned), so a warp reads a 128-dim bf16 head in one
// 256-byte transaction.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace llmctl::kernels::cuda {

// dst[0..N) = src[0..N) as fp32; src aligned to N * 2 bytes. N: 2, 4 or 8.
template <int N>
__device__ __forceinline__ void load_bf16(float (&dst)[N], const __nv_bfloat16* src) {
  static_assert(N == 2 || N == 4 || N == 8, "a bf16 vector load of 4, 8 or 16 bytes");
  alignas(2 * N) __nv_bfloat162 pairs[N / 2];  // aligned as the vector it is loaded as
  if constexpr (N == 2) {
    *reinterpret_cast<uint32_t*>(pairs) = *reinterpret_cast<const uint32_t*>(src);
  } else if constexpr (N == 4) {
    *reinterpret_cast<uint2*>(pairs) = *reinterpret_cast<const uint2*>(src);
  } else {
    *reinterpret_cast<uint4*>(pairs) = *reinterpret_cast<const uint4*>(src);
  }
#pragma unroll
  for (int i = 0; i < N / 2; ++i) {
    const float2 f = __bfloat1622float2(pairs[i]);
    dst[2 * i] = f.x;
    dst[2 * i + 1] = f.y;
  }
}

// dst[i] = src[i] for i < count, 0 after: one vector load when the chunk is
// whole and aligned (`vector`: the row length is a multiple of N), else
// element by element. N = 1 is always element by element.
template <int N>
__device__ __forceinline__ void load_bf16_chunk(float (&dst)[N], const __nv_bfloat16* src, int count, bool vector) {
  if constexpr (N >= 2 && N <= 8) {
    if (vector && count >= N) {
      load_bf16<N>(dst, src);
      return;
    }
  }
#pragma unroll
  for (int i = 0; i < N; ++i) dst[i] = i < count ? __bfloat162float(src[i]) : 0.0f;
}

}  // namespace llmctl::kernels::cuda
