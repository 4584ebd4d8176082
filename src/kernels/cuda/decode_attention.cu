// Attention for decode-only steps with many sequences: one block per
// (sequence, KV head) serves all G query heads that share that KV head, so
// each key and value row is read from the cache once instead of G times
// (with GQA the KV reads are most of a batched decode step's attention
// traffic). The block's warps split the keys; per key a warp forms G dot
// products (lanes split head_dim, kPerLane consecutive bf16 elements each,
// one vector load per K or V row) and keeps G online softmaxes; the block
// then merges its warps. When the batch has too few (sequence, KV head)
// pairs to fill the GPU, each pair's keys are split over several blocks
// (flash-decoding): each leaves its G partial softmaxes in scratch, and the
// last block of the pair to finish (a per-pair counter) merges them.
#include <cfloat>

#include "kernels/cuda/attention_scratch.cuh"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/kv_bf16.cuh"
#include "kernels/cuda/launch.cuh"

namespace llmctl::kernels::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
// Split keys until the grid has about this many blocks (two per SM of an
// H100/H200); a batch with as many (sequence, KV head) pairs runs unsplit.
constexpr int64_t kTargetBlocks = 264;
// Fewer (sequence, KV head) pairs than this go to the per-query-head kernel.
constexpr int64_t kMinGroupedPairs = 32;
constexpr int64_t kMaxSplits = 64;
// Fewer keys than this per split (of the longest context the block table
// allows) would leave the warps idle.
constexpr int64_t kMinKeysPerSplit = 4 * kWarps;

// Key splits per (sequence, KV head) pair and where their partials go:
// partials [pairs, splits, G, head_dim + 2] (max, sum, then the unnormalised
// output), counters [pairs], zero between launches.
struct DecodeSplit {
  int splits = 1;
  float* partials = nullptr;
  int* counters = nullptr;
};

template <int kPerLane, int G>
struct DecodeShared {
  float warp_max[kWarps][G];
  float warp_sum[kWarps][G];
  float warp_acc[kWarps][G][32 * kPerLane];
};

template <int kPerLane, int G>
__global__ void __launch_bounds__(kThreads) decode_gqa_kernel(float* out, const float* q, int64_t q_stride,
                                                              const __nv_bfloat16* k_cache,
                                                              const __nv_bfloat16* v_cache,
                                                              PagedAttentionArgs b, int num_q_heads, int num_kv_heads,
                                                              int head_dim, float scale, int64_t sliding_window,
                                                              DecodeSplit split) {
  pdl_begin();
  __shared__ DecodeShared<kPerLane, G> sh;
  __shared__ bool last_split;
  const int s = static_cast<int>(blockIdx.x) / num_kv_heads, kvh = static_cast<int>(blockIdx.x) % num_kv_heads;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int token = b.query_start[s];
  const int64_t ctx = b.context_len[s];
  const int64_t pos = ctx - 1;
  const int64_t window_lo = sliding_window > 0 && pos - sliding_window + 1 > 0 ? pos - sliding_window + 1 : 0;
  // This block's share [lo, hi] of the keys (all of them unsplit).
  const int64_t per_split = (pos + 1 - window_lo + split.splits - 1) / split.splits;
  const int64_t lo = window_lo + static_cast<int64_t>(blockIdx.y) * per_split;
  const int64_t hi = lo + per_split - 1 < pos ? lo + per_split - 1 : pos;
  const int32_t* table = b.block_tables + static_cast<int64_t>(s) * b.max_blocks_per_seq;
  const int64_t kv_row = static_cast<int64_t>(num_kv_heads) * head_dim;
  const int64_t kv_offset = static_cast<int64_t>(kvh) * head_dim;
  // Lane l holds elements [l * kPerLane, (l + 1) * kPerLane) of head_dim.
  const int d0 = lane * kPerLane, in_range = head_dim - d0;
  const bool vec = head_dim % kPerLane == 0;

  float qr[G][kPerLane], acc[G][kPerLane], m[G], l[G];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const float* qv = q + static_cast<int64_t>(token) * q_stride + static_cast<int64_t>(kvh * G + g) * head_dim;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      qr[g][i] = i < in_range ? qv[d0 + i] * scale : 0.0f;
      acc[g][i] = 0.0f;
    }
    m[g] = -FLT_MAX;
    l[g] = 0.0f;
  }
  for (int64_t j = lo + warp; j <= hi; j += kWarps) {
    const int64_t slot = static_cast<int64_t>(table[j / b.block_size]) * b.block_size + j % b.block_size;
    const int64_t row = slot * kv_row + kv_offset + d0;
    float kr[kPerLane], vr[kPerLane];
    load_bf16_chunk<kPerLane>(kr, k_cache + row, in_range, vec);
    load_bf16_chunk<kPerLane>(vr, v_cache + row, in_range, vec);
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float part = 0.0f;
#pragma unroll
      for (int i = 0; i < kPerLane; ++i) part += qr[g][i] * kr[i];
      const float score = warp_sum(part);
      const float m_new = fmaxf(m[g], score);
      const float correction = __expf(m[g] - m_new);
      const float p = __expf(score - m_new);
      l[g] = l[g] * correction + p;
#pragma unroll
      for (int i = 0; i < kPerLane; ++i) acc[g][i] = acc[g][i] * correction + p * vr[i];
      m[g] = m_new;
    }
  }
#pragma unroll
  for (int g = 0; g < G; ++g) {
    if (lane == 0) {
      sh.warp_max[warp][g] = m[g];
      sh.warp_sum[warp][g] = l[g];
    }
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) sh.warp_acc[warp][g][d0 + i] = acc[g][i];
  }
  __syncthreads();
  // Merge the warps: thread t takes elements t, t + kThreads, ... of the G
  // outputs. Unsplit, that is the output; split, the block's partial.
  const int64_t part_stride = head_dim + 2;
  float* part = split.splits == 1 ? nullptr
                                  : split.partials + (static_cast<int64_t>(blockIdx.x) * split.splits + blockIdx.y) *
                                                         G * part_stride;
  for (int e = threadIdx.x; e < G * head_dim; e += kThreads) {
    const int g = e / head_dim, d = e % head_dim;
    float total_max = -FLT_MAX;
    for (int w = 0; w < kWarps; ++w) {
      if (sh.warp_sum[w][g] > 0.0f) total_max = fmaxf(total_max, sh.warp_max[w][g]);
    }
    float total = 0.0f, v = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      if (sh.warp_sum[w][g] > 0.0f) {
        const float f = __expf(sh.warp_max[w][g] - total_max);
        total += sh.warp_sum[w][g] * f;
        v += sh.warp_acc[w][g][d] * f;
      }
    }
    if (split.splits == 1) {
      out[(static_cast<int64_t>(token) * num_q_heads + kvh * G + g) * head_dim + d] = total > 0.0f ? v / total : 0.0f;
    } else {
      part[g * part_stride + 2 + d] = v;
      if (d == 0) {
        part[g * part_stride] = total_max;
        part[g * part_stride + 1] = total;
      }
    }
  }
  if (split.splits == 1) return;

  __threadfence();  // the partials visible device-wide before the counter says so
  __syncthreads();
  if (threadIdx.x == 0) last_split = atomicAdd(&split.counters[blockIdx.x], 1) == split.splits - 1;
  __syncthreads();
  if (!last_split) return;
  __threadfence();
  // Other blocks' partials are read through L2 (__ldcg), never a stale L1 line.
  const int64_t split_stride = G * part_stride;
  const float* base = split.partials + static_cast<int64_t>(blockIdx.x) * split.splits * split_stride;
  for (int e = threadIdx.x; e < G * head_dim; e += kThreads) {
    const int g = e / head_dim, d = e % head_dim;
    float total_max = -FLT_MAX;
    for (int i = 0; i < split.splits; ++i) {
      const float* pi = base + i * split_stride + g * part_stride;
      if (__ldcg(pi + 1) > 0.0f) total_max = fmaxf(total_max, __ldcg(pi));
    }
    float total = 0.0f, v = 0.0f;
    for (int i = 0; i < split.splits; ++i) {
      const float* pi = base + i * split_stride + g * part_stride;
      const float sum = __ldcg(pi + 1);
      if (sum > 0.0f) {
        const float f = __expf(__ldcg(pi) - total_max);
        total += sum * f;
        v += __ldcg(pi + 2 + d) * f;
      }
    }
    out[(static_cast<int64_t>(token) * num_q_heads + kvh * G + g) * head_dim + d] = total > 0.0f ? v / total : 0.0f;
  }
  if (threadIdx.x == 0) split.counters[blockIdx.x] = 0;  // ready for the next launch (or graph replay)
}

template <int kPerLane, int G>
void launch_decode(float* out, const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                   const __nv_bfloat16* v_cache, const PagedAttentionArgs& b, int64_t num_q_heads,
                   int64_t num_kv_heads, int64_t head_dim, float scale, int64_t sliding_window,
                   const DecodeSplit& split, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(b.num_seqs * num_kv_heads), static_cast<unsigned>(split.splits));
  launch_kernel(decode_gqa_kernel<kPerLane, G>, grid, kThreads, stream, out, q, q_stride, k_cache, v_cache, b,
                static_cast<int>(num_q_heads), static_cast<int>(num_kv_heads), static_cast<int>(head_dim), scale,
                sliding_window, split);
  CUDA_CHECK_LAUNCH();
}

// false when the group size G = QH / KV has no kernel instance (above 8).
// Qwen2.5 models have G = 5, 6 and 7, Llama and Qwen3 2, 4 and 8.
template <int kPerLane>
bool dispatch_group(float* out, const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                    const __nv_bfloat16* v_cache, const PagedAttentionArgs& b, int64_t num_q_heads,
                    int64_t num_kv_heads, int64_t head_dim, float scale, int64_t sliding_window,
                    const DecodeSplit& split, cudaStream_t stream) {
  switch (num_q_heads / num_kv_heads) {
    case 1:
      launch_decode<kPerLane, 1>(out, q, q_stride, k_cache, v_cache, b, num_q_heads, num_kv_heads, head_dim, scale,
                                 sliding_window, split, stream);
      return true;
    case 2:
      launch_decode<kPerLane, 2>(out, q, q_stride, k_cache, v_cache, b, num_q_heads, num_kv_heads, head_dim, scale,
                                 sliding_window, split, stream);
      return true;
    case 3:
      launch_decode<kPerLane, 3>(out, q, q_stride, k_cache, v_cache, b, num_q_heads, num_kv_heads, head_dim, scale,
                                 sliding_window, split, stream);
      return true;
    case 4:
      launch_decode<kPerLane, 4>(out, q, q_stride, k_cache, v_cache, b, num_q_heads, num_kv_heads, head_dim, scale,
                                 sliding_window, split, stream);
      return true;
    case 5:
      launch_decode<kPerLane, 5>(out, q, q_stride, k_cache, v_cache, b, num_q_heads, num_kv_heads, head_dim, scale,
                                 sliding_window, split, stream);
      return true;
    case 6:
      launch_decode<kPerLane, 6>(out, q, q_stride, k_cache, v_cache, b, num_q_heads, num_kv_heads, head_dim, scale,
                                 sliding_window, split, stream);
      return true;
    case 7:
      launch_decode<kPerLane, 7>(out, q, q_stride, k_cache, v_cache, b, num_q_heads, num_kv_heads, head_dim, scale,
                                 sliding_window, split, stream);
      return true;
    case 8:
      launch_decode<kPerLane, 8>(out, q, q_stride, k_cache, v_cache, b, num_q_heads, num_kv_heads, head_dim, scale,
                                 sliding_window, split, stream);
      return true;
    default:
      return false;
  }
}

// Splits for this batch: enough blocks to fill the GPU, each with at least
// kMinKeysPerSplit keys of the longest context the block table allows.
int decode_splits(const PagedAttentionArgs& b, int64_t num_kv_heads) {
  const int64_t pairs = static_cast<int64_t>(b.num_seqs) * num_kv_heads;
  int64_t splits = (kTargetBlocks + pairs - 1) / pairs;
  const int64_t bound = static_cast<int64_t>(b.max_blocks_per_seq) * b.block_size;
  const int64_t by_keys = (bound + kMinKeysPerSplit - 1) / kMinKeysPerSplit;
  splits = splits < by_keys ? splits : by_keys;
  splits = splits < kMaxSplits ? splits : kMaxSplits;
  return static_cast<int>(splits < 1 ? 1 : splits);
}

// Grows `scratch` (attention_scratch.cuh) for this launch and points the
// split at it.
void ensure_split_scratch(AttentionScratch& scratch, DecodeSplit& split, int64_t pairs, int64_t group,
                          int64_t head_dim, cudaStream_t stream) {
  const std::size_t floats = static_cast<std::size_t>(pairs) * static_cast<std::size_t>(split.splits) *
                             static_cast<std::size_t>(group) * static_cast<std::size_t>(head_dim + 2);
  grow_attention_scratch(scratch, floats, static_cast<std::size_t>(pairs), stream);
  split.partials = scratch.partials;
  split.counters = scratch.counters;
}

}  // namespace

bool decode_gqa_attention(float* out, const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                          const __nv_bfloat16* v_cache, const PagedAttentionArgs& batch, int64_t num_q_heads,
                          int64_t num_kv_heads, int64_t head_dim, float scale, int64_t sliding_window,
                          AttentionScratch& scratch, cudaStream_t stream) {
  if (batch.num_tokens != batch.num_seqs) return false;  // prefill tokens present, or the count is unknown
  const int64_t group = num_q_heads / num_kv_heads;
  if (group < 1 || group > 8) return false;
  if (head_dim > 128) return false;
  // A batch of one to three sequences (at 8 KV heads) is bound by latency,
  // not by K/V bytes: the per-query-head kernel (paged_attention.cu) takes
  // 10 us per 8B layer at 256 tokens of context where this one, split over
  // keys and merged by the last block, takes 15 us (H200).
  if (static_cast<int64_t>(batch.num_seqs) * num_kv_heads < kMinGroupedPairs) return false;
  DecodeSplit split;
  split.splits = decode_splits(batch, num_kv_heads);
  if (split.splits > 1) {
    ensure_split_scratch(scratch, split, static_cast<int64_t>(batch.num_seqs) * num_kv_heads, group, head_dim, stream);
  }
  if (head_dim <= 64) {
    return dispatch_group<2>(out, q, q_stride, k_cache, v_cache, batch, num_q_heads, num_kv_heads, head_dim, scale,
                             sliding_window, split, stream);
  }
  return dispatch_group<4>(out, q, q_stride, k_cache, v_cache, batch, num_q_heads, num_kv_heads, head_dim, scale,
                           sliding_window, split, stream);
}

}  // namespace llmctl::kernels::cuda
