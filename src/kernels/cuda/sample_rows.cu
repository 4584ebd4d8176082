// Sampling on the device (kernels.h gives the semantics; kernels/cpu/
// sample_rows.cpp is the twin it is tested against). One block per row. The
// top_k and top_p cut-offs are found without sorting the vocabulary: a radix
// select over the logits' order-preserving 32-bit keys, 8 bits a pass, with a
// histogram of counts (top_k) or of probability mass (top_p) per pass. The
// draw walks the candidates in id order with a block-wide prefix sum, so the
// pick is the token the host twin's sequential walk finds. Masses are fp64
// on both sides so that the two agree except at rounding-level boundaries.
#include <cub/block/block_scan.cuh>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.cuh"

namespace llmctl::kernels::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;

// Larger floats get larger keys; NaN gets 0, below every real key (-inf is
// 0x007fffff), so a key > 0 means "not NaN".
__device__ __forceinline__ uint32_t key_of(float v) {
  if (v != v) return 0;
  const uint32_t u = __float_as_uint(v);
  return (u & 0x80000000u) != 0 ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ double block_sum(double v, double* partial) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  __syncthreads();  // partial[] may still be read by a previous call
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  double total = 0;
  for (int w = 0; w < kWarps; ++w) total += partial[w];  // the same order in every thread
  return total;
}

// The first maximum (NaN never wins) as (value, index), in every thread.
struct Best {
  float value;
  int64_t index;
};

__device__ __forceinline__ bool better(float v, int64_t i, const Best& b) {
  if (v != v) return false;
  if (b.value != b.value) return true;
  return v > b.value || (v == b.value && i < b.index);
}

__device__ Best block_best(Best b, float* values, int64_t* indices) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    const float v = __shfl_xor_sync(0xffffffffu, b.value, offset);
    const int64_t i = __shfl_xor_sync(0xffffffffu, b.index, offset);
    if (better(v, i, b)) b = {v, i};
  }
  __syncthreads();
  if (threadIdx.x % 32 == 0) {
    values[threadIdx.x / 32] = b.value;
    indices[threadIdx.x / 32] = b.index;
  }
  __syncthreads();
  Best out{values[0], indices[0]};
  for (int w = 1; w < kWarps; ++w) {
    if (better(values[w], indices[w], out)) out = {values[w], indices[w]};
  }
  return out;
}

// The largest key K with weight(keys >= K) >= target, where weight(i) is
// w(i) for tokens passing `keep` (0 otherwise). When rounding leaves every
// bin short, the lowest non-empty bin is taken.
template <typename W, typename WeightFn>
__device__ uint32_t select_key(const float* x, int64_t vocab, W target, WeightFn weight, W* hist,
                               uint32_t* digit_out) {
  uint32_t prefix = 0, mask = 0;
  W above = 0;  // thread 0's: the weight of keys above the prefix
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < 256; i += blockDim.x) hist[i] = 0;
    __syncthreads();
    for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      const float v = x[i];
      const uint32_t k = key_of(v);
      if ((k & mask) != prefix) continue;
      const W w = weight(v, k);
      if (w > 0) atomicAdd(&hist[(k >> shift) & 255u], w);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int d = 255, lowest = -1;
      for (; d >= 0; --d) {
        if (hist[d] > 0) lowest = d;
        if (above + hist[d] >= target) break;
        above += hist[d];
      }
      if (d < 0) {
        d = lowest >= 0 ? lowest : 0;
        if (lowest >= 0) above -= hist[lowest];
      }
      *digit_out = static_cast<uint32_t>(d);
    }
    __syncthreads();
    prefix |= *digit_out << shift;
    mask |= 255u << shift;
  }
  return prefix;
}

__global__ void __launch_bounds__(kThreads) sample_rows_kernel(int32_t* ids, float* logits, SamplingRows s) {
  pdl_begin();
  using Scan = cub::BlockScan<double, kThreads>;
  __shared__ typename Scan::TempStorage scan_storage;
  __shared__ double hist_mass[256];
  __shared__ uint32_t hist_count[256];
  __shared__ double partial[kWarps];
  __shared__ float best_values[kWarps];
  __shared__ int64_t best_indices[kWarps];
  __shared__ uint32_t digit;
  __shared__ int64_t picked;

  const int64_t vocab = s.vocab;
  const SamplingRowParams p = s.params[blockIdx.x];
  float* x = logits + static_cast<int64_t>(blockIdx.x) * vocab;

  // Seen tokens are distinct within a row, so threads never share one.
  const auto rp = static_cast<float>(p.repetition_penalty);
  const bool additive = p.presence_penalty != 0.0 || p.frequency_penalty != 0.0;
  for (int32_t e = p.seen_begin + static_cast<int32_t>(threadIdx.x); e < p.seen_end; e += blockDim.x) {
    const int32_t t = s.seen_tokens[e];
    if (t < 0 || t >= vocab) continue;
    float v = x[t];
    if (p.repetition_penalty != 1.0) v = v > 0 ? __fdiv_rn(v, rp) : __fmul_rn(v, rp);
    const int32_t c = s.seen_output_counts[e];
    if (additive && c > 0) {
      // Unfused, as the host computes it.
      const double penalty = __dadd_rn(__dmul_rn(p.frequency_penalty, static_cast<double>(c)), p.presence_penalty);
      v = static_cast<float>(__dsub_rn(static_cast<double>(v), penalty));
    }
    x[t] = v;
  }
  __syncthreads();  // a banned token may also be a seen one: ban it last
  for (int32_t e = p.banned_begin + static_cast<int32_t>(threadIdx.x); e < p.banned_end; e += blockDim.x) {
    const int32_t t = s.banned_tokens[e];
    if (t >= 0 && t < vocab) x[t] = -INFINITY;
  }
  __syncthreads();

  Best b{__int_as_float(0x7fc00000), vocab};
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float v = x[i];
    if (better(v, i, b)) b = {v, i};
  }
  b = block_best(b, best_values, best_indices);
  const int64_t first_max = b.index < vocab ? b.index : 0;
  if (!(p.temperature > 0) || b.index >= vocab || isinf(b.value)) {
    if (threadIdx.x == 0) ids[blockIdx.x] = static_cast<int32_t>(first_max);
    return;
  }
  const double mx = b.value;
  const double inv_t = 1.0 / p.temperature;
  auto weight_of = [&](float v) { return exp((static_cast<double>(v) - mx) * inv_t); };

  uint32_t cutoff = 1;  // every non-NaN key
  if (p.top_k > 0 && p.top_k < vocab) {
    auto count = [](float, uint32_t k) -> uint32_t { return k > 0 ? 1u : 0u; };
    cutoff = max(cutoff, select_key<uint32_t>(x, vocab, static_cast<uint32_t>(p.top_k), count, hist_count, &digit));
  }
  if (p.top_p < 1.0) {
    double mass = 0;
    for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      const float v = x[i];
      if (key_of(v) >= cutoff) mass += weight_of(v);
    }
    mass = block_sum(mass, partial);
    const uint32_t floor_key = cutoff;
    auto kept_mass = [&](float v, uint32_t k) -> double { return k >= floor_key ? weight_of(v) : 0.0; };
    cutoff = max(cutoff, select_key<double>(x, vocab, p.top_p * mass, kept_mass, hist_mass, &digit));
  }
  auto candidate_weight = [&](float v) -> double {
    if (key_of(v) < cutoff) return 0.0;
    const double w = weight_of(v);
    return p.min_p <= 0 || w >= p.min_p ? w : 0.0;
  };
  double total = 0;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) total += candidate_weight(x[i]);
  total = block_sum(total, partial);
  const double target = p.uniform * total;

  // Walk tiles of kThreads ids in order: the thread whose inclusive prefix
  // first exceeds the target holds the pick.
  if (threadIdx.x == 0) picked = -1;
  int64_t last = -1;  // this thread's last candidate, for the rounding fallback
  double running = 0;
  for (int64_t base = 0; base < vocab; base += kThreads) {
    const int64_t i = base + threadIdx.x;
    const double w = i < vocab ? candidate_weight(x[i]) : 0.0;
    if (w > 0) last = i;
    double inclusive = 0, tile_total = 0;
    __syncthreads();  // scan_storage is reused by every tile
    Scan(scan_storage).InclusiveSum(w, inclusive, tile_total);
    if (w > 0 && running + inclusive > target && running + (inclusive - w) <= target) picked = i;
    __syncthreads();
    if (picked >= 0) break;
    running += tile_total;
  }
  if (picked < 0) {
    // Rounding left the sum short of the target: the last candidate.
    Best l{last >= 0 ? 0.0f : __int_as_float(0x7fc00000), last >= 0 ? vocab - last : vocab};
    l = block_best(l, best_values, best_indices);  // smallest vocab - last = largest last
    if (threadIdx.x == 0) ids[blockIdx.x] = static_cast<int32_t>(l.value == l.value ? vocab - l.index : first_max);
    return;
  }
  if (threadIdx.x == 0) ids[blockIdx.x] = static_cast<int32_t>(picked);
}

}  // namespace

void sample_rows(int32_t* ids, float* logits, const SamplingRows& rows, cudaStream_t stream) {
  CUDA_REQUIRE(rows.rows >= 0 && rows.rows < (int64_t{1} << 31) && rows.vocab > 0 && rows.vocab <= 2147483647);
  if (rows.rows == 0) return;
  launch_kernel(sample_rows_kernel, static_cast<unsigned>(rows.rows), kThreads, stream, ids, logits, rows);
  CUDA_CHECK_LAUNCH();
}

}  // namespace llmctl::kernels::cuda
