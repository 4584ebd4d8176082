// Small-batch linear with bf16 weights: out[T, N] = x[T, K] * w[N, K]^T
// (+ bias), for the T <= kGemvMaxTokens of decode. Such a step is bound by
// reading the weights once, so the kernel is shaped for bandwidth: one warp
// per output row, each lane streaming 16-byte loads (8 bf16) with kUnroll of
// them in flight before the first use, the T token rows of x (fp32, small,
// L1/L2-resident) applied to every weight vector it loads, fp32 accumulation
// and a warp reduction. Weights are read with the non-coherent path and not
// kept in L1: each is used once per step.
// The first round of weight loads is issued before waiting on the kernel
// that produces x (launch.cuh): weights must not be written by a kernel
// still in flight (copy_weight_to_device returns after its conversion).
// K % 8 != 0 or unaligned pointers take a scalar variant of the same kernel.
#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.cuh"

namespace llmctl::kernels::cuda {
namespace {

struct GemvLaunch {
  static constexpr int kWarps = 4;  // rows per block
  static constexpr int kThreads = kWarps * 32;
  // 16-byte weight loads in flight per lane: at K = 2048 a row is 8 per
  // lane, so one round trip to memory per warp.
  static constexpr int kUnroll = 8;
  static constexpr int kMaxGridY = 65535;
};

__device__ __forceinline__ uint4 load_streaming(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

// The two bf16 halves of a 32-bit word as floats (bf16 is the top half of
// an fp32, so widening is a shift).
__device__ __forceinline__ float bf16_lo(uint32_t u) { return __uint_as_float(u << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t u) { return __uint_as_float(u & 0xffff0000u); }

// acc[t] += dot(w[col .. col+7], x[t, col .. col+7]).
template <int kTokens>
__device__ __forceinline__ void dot8(float (&acc)[kTokens], const uint4& wv, const float* __restrict__ x,
                                     int64_t k, int64_t col) {
  const float w0 = bf16_lo(wv.x), w1 = bf16_hi(wv.x), w2 = bf16_lo(wv.y), w3 = bf16_hi(wv.y);
  const float w4 = bf16_lo(wv.z), w5 = bf16_hi(wv.z), w6 = bf16_lo(wv.w), w7 = bf16_hi(wv.w);
#pragma unroll
  for (int t = 0; t < kTokens; ++t) {
    const float4* xp = reinterpret_cast<const float4*>(x + t * k + col);
    const float4 a = __ldg(xp), b = __ldg(xp + 1);
    float s = acc[t];
    s = fmaf(w0, a.x, s);
    s = fmaf(w1, a.y, s);
    s = fmaf(w2, a.z, s);
    s = fmaf(w3, a.w, s);
    s = fmaf(w4, b.x, s);
    s = fmaf(w5, b.y, s);
    s = fmaf(w6, b.z, s);
    s = fmaf(w7, b.w, s);
    acc[t] = s;
  }
}

// Block (blockIdx.x, blockIdx.y): rows [blockIdx.x * kWarps, +kWarps) for
// tokens [blockIdx.y * kTokens, +kTokens) of x / out, which the launcher has
// already offset to this launch's first token.
template <int kTokens, bool kVector>
__global__ void __launch_bounds__(GemvLaunch::kThreads)
    gemv_bf16_kernel(float* __restrict__ out, const float* __restrict__ x, const __nv_bfloat16* __restrict__ w,
                     const float* __restrict__ bias, int64_t n, int64_t k) {
  pdl_trigger();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * GemvLaunch::kWarps + warp;
  if (row >= n) return;
  const int64_t t0 = static_cast<int64_t>(blockIdx.y) * kTokens;
  x += t0 * k;
  out += t0 * n;
  float acc[kTokens];
#pragma unroll
  for (int t = 0; t < kTokens; ++t) acc[t] = 0.0f;

  if constexpr (kVector) {
    const uint4* wr = reinterpret_cast<const uint4*>(w + row * k);
    const int64_t chunks = k / 8;
    constexpr int kU = GemvLaunch::kUnroll;
    int64_t c = lane;
    uint4 wv[kU];
    // The first round of weights is loaded before waiting for the kernel
    // that produces x: no kernel writes weights, and this way the DRAM
    // ramp-up overlaps the (latency-bound) predecessor.
    bool full = c + 32 * (kU - 1) < chunks;
    if (full) {
#pragma unroll
      for (int u = 0; u < kU; ++u) wv[u] = load_streaming(wr + c + 32 * u);
    }
    pdl_wait();
    while (full) {
#pragma unroll
      for (int u = 0; u < kU; ++u) dot8<kTokens>(acc, wv[u], x, k, (c + 32 * u) * 8);
      c += 32 * kU;
      full = c + 32 * (kU - 1) < chunks;
      if (full) {
#pragma unroll
        for (int u = 0; u < kU; ++u) wv[u] = load_streaming(wr + c + 32 * u);
      }
    }
    for (; c < chunks; c += 32) dot8<kTokens>(acc, load_streaming(wr + c), x, k, c * 8);
  } else {
    pdl_wait();
    const __nv_bfloat16* wr = w + row * k;
    for (int64_t c = lane; c < k; c += 32) {
      const float wf = __bfloat162float(wr[c]);
#pragma unroll
      for (int t = 0; t < kTokens; ++t) acc[t] = fmaf(wf, x[t * k + c], acc[t]);
    }
  }
#pragma unroll
  for (int t = 0; t < kTokens; ++t) acc[t] = warp_sum(acc[t]);
  if (lane == 0) {
    const float b = bias != nullptr ? bias[row] : 0.0f;
#pragma unroll
    for (int t = 0; t < kTokens; ++t) out[t * n + row] = acc[t] + b;
  }
}

template <int kTokens>
void launch_gemv(float* out, const float* x, const __nv_bfloat16* w, const float* bias, int64_t num_chunks, int64_t n,
                 int64_t k, bool vector, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((n + GemvLaunch::kWarps - 1) / GemvLaunch::kWarps),
                  static_cast<unsigned>(num_chunks));
  if (vector) {
    launch_kernel(gemv_bf16_kernel<kTokens, true>, grid, GemvLaunch::kThreads, stream, out, x, w, bias, n, k);
  } else {
    launch_kernel(gemv_bf16_kernel<kTokens, false>, grid, GemvLaunch::kThreads, stream, out, x, w, bias, n, k);
  }
  CUDA_CHECK_LAUNCH();
}

// num_chunks launches' worth of kTokens tokens each, starting at token 0.
void launch_gemv_tokens(int tokens, float* out, const float* x, const __nv_bfloat16* w, const float* bias,
                        int64_t num_chunks, int64_t n, int64_t k, bool vector, cudaStream_t stream) {
  switch (tokens) {
    case 1: launch_gemv<1>(out, x, w, bias, num_chunks, n, k, vector, stream); break;
    case 2: launch_gemv<2>(out, x, w, bias, num_chunks, n, k, vector, stream); break;
    case 3: launch_gemv<3>(out, x, w, bias, num_chunks, n, k, vector, stream); break;
    case 4: launch_gemv<4>(out, x, w, bias, num_chunks, n, k, vector, stream); break;
    case 5: launch_gemv<5>(out, x, w, bias, num_chunks, n, k, vector, stream); break;
    case 6: launch_gemv<6>(out, x, w, bias, num_chunks, n, k, vector, stream); break;
    case 7: launch_gemv<7>(out, x, w, bias, num_chunks, n, k, vector, stream); break;
    default: launch_gemv<8>(out, x, w, bias, num_chunks, n, k, vector, stream); break;
  }
}

}  // namespace

void gemv_bf16(float* out, const float* x, const __nv_bfloat16* w, const float* bias, int64_t num_tokens,
               int64_t out_features, int64_t in_features, cudaStream_t stream) {
  static_assert(kGemvMaxTokens == 8, "launch_gemv_tokens instantiates 1..8 tokens");
  CUDA_REQUIRE(num_tokens >= 0 && out_features > 0 && in_features > 0);
  CUDA_REQUIRE((out_features + GemvLaunch::kWarps - 1) / GemvLaunch::kWarps < (int64_t{1} << 31));
  if (num_tokens == 0) return;
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  const bool vector = in_features % 8 == 0 && aligned(w) && aligned(x);
  // Whole groups of kGemvMaxTokens tokens (more than fit one launch's grid
  // only in the fallback for shapes cuBLASLt refuses), then the remainder.
  int64_t done = 0;
  while (num_tokens - done >= kGemvMaxTokens) {
    int64_t chunks = (num_tokens - done) / kGemvMaxTokens;
    chunks = chunks < GemvLaunch::kMaxGridY ? chunks : GemvLaunch::kMaxGridY;
    launch_gemv_tokens(kGemvMaxTokens, out + done * out_features, x + done * in_features, w, bias, chunks,
                       out_features, in_features, vector, stream);
    done += chunks * kGemvMaxTokens;
  }
  if (done < num_tokens) {
    launch_gemv_tokens(static_cast<int>(num_tokens - done), out + done * out_features, x + done * in_features, w,
                       bias, 1, out_features, in_features, vector, stream);
  }
}

}  // namespace llmctl::kernels::cuda
