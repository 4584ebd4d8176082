// Attention for decode-only steps with many sequences, on the tensor cores:
// one block per (sequence, KV head) serves all G query heads that share that
// KV head, so each key and value row is read from the cache once instead of
// G times (with GQA the KV reads are most of a batched decode step's
// attention traffic). The G query rows form the top of a 16-row mma tile
// (G <= 8; the lower rows are zero), so a tile of 16 keys costs a warp
// head_dim / 16 mma instructions for the scores and head_dim / 8 for P x V,
// where a CUDA-core kernel spends a warp reduction per key and query head.
//
// The block's four warps take 16 keys each of a 64-key tile. Tiles are
// copied from the paged cache into shared memory with cp.async, the next
// one in flight while the current one is used. Each warp keeps its own
// online softmax (fp32 max and sum per query row) and its fp32 output in
// mma accumulator registers, reusing the score accumulators as the bf16
// P operand (the m16n8k16 C and A layouts line up); the warps merge once at
// the end. Queries are scaled before rounding to bf16, as in flash prefill;
// transformers computes bf16 models' attention in bf16 too.
//
// When the batch has too few (sequence, KV head) pairs to fill the GPU,
// each pair's keys are split over several blocks (flash-decoding): each
// leaves its G partial softmaxes in scratch, and the last block of the pair
// to finish (a per-pair counter) merges them.
#include <cuda_bf16.h>

#include <cfloat>
#include <cstdint>

#include "kernels/cuda/attention_scratch.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/kv_tile.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/mma_bf16.cuh"

namespace llmctl::kernels::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kKeysPerWarp = 16;  // one m16n8k16 k-step of P x V
constexpr int kTile = kWarps * kKeysPerWarp;
// Split keys until the grid has about this many blocks (three per SM of an
// H100/H200, as many as their shared memory holds at head dim 128); a batch
// with as many (sequence, KV head) pairs runs unsplit.
constexpr int64_t kTargetBlocks = 396;
// Fewer (sequence, KV head) pairs than this go to the per-query-head kernel.
constexpr int64_t kMinGroupedPairs = 32;
constexpr int64_t kMaxSplits = 64;
// Fewer keys than this per split (of the longest context the block table
// allows) would leave the tile mostly empty.
constexpr int64_t kMinKeysPerSplit = kTile;

// Key splits per (sequence, KV head) pair and where their partials go:
// partials [pairs, splits, G, head_dim + 2] (max, sum, then the unnormalised
// output), counters [pairs], zero between launches.
struct DecodeSplit {
  int splits = 1;
  float* partials = nullptr;
  int* counters = nullptr;
};

// Shared memory for head dim D: two stages of a K and a V tile, rows padded
// to D + 8 bf16 so that both the 32-bit fragment loads of K (8 rows x 4
// words) and ldmatrix of V (8 rows of 16 bytes) hit distinct banks. After
// the loop the same bytes hold the warps' outputs, maxima and sums.
template <int D>
struct DecodeLayout {
  static constexpr int kLd = D + 8;
  static constexpr int kTileElems = kTile * kLd;
  static constexpr int kBytes = 2 * 2 * kTileElems * 2;
  static_assert(kWarps * 8 * (D + 2) * 4 <= kBytes, "the warp merge fits in the tile space");
};

template <int D, int G>
__global__ void __launch_bounds__(kThreads) decode_gqa_kernel(float* out, const float* q, int64_t q_stride,
                                                              const __nv_bfloat16* k_cache,
                                                              const __nv_bfloat16* v_cache,
                                                              PagedAttentionArgs b, int num_q_heads, int num_kv_heads,
                                                              float scale, int64_t sliding_window,
                                                              DecodeSplit split) {
  static_assert(G >= 1 && G <= 8, "query heads per KV head fill at most the top half of an mma tile");
  using L = DecodeLayout<D>;
  pdl_begin();
  extern __shared__ __align__(128) unsigned char smem[];
  auto* tiles = reinterpret_cast<__nv_bfloat16*>(smem);
  __shared__ bool last_split;
  const int s = static_cast<int>(blockIdx.x) / num_kv_heads, kvh = static_cast<int>(blockIdx.x) % num_kv_heads;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int grp = lane / 4, quad = lane % 4;  // mma fragment row and column pair
  const int token = b.query_start[s];
  const int64_t ctx = b.context_len[s];
  const int64_t pos = ctx - 1;
  const int64_t window_lo = sliding_window > 0 && pos - sliding_window + 1 > 0 ? pos - sliding_window + 1 : 0;
  // This block's share [lo, hi] of the keys (all of them unsplit); empty
  // when the split lies past the context.
  const int64_t per_split = (pos + 1 - window_lo + split.splits - 1) / split.splits;
  const int64_t lo = window_lo + static_cast<int64_t>(blockIdx.y) * per_split;
  const int64_t hi = lo + per_split - 1 < pos ? lo + per_split - 1 : pos;
  const int num_tiles = hi >= lo ? static_cast<int>((hi - lo + kTile) / kTile) : 0;
  const int32_t* table = b.block_tables + static_cast<int64_t>(s) * b.max_blocks_per_seq;
  const int64_t kv_row = static_cast<int64_t>(num_kv_heads) * D;
  const int64_t kv_offset = static_cast<int64_t>(kvh) * D;

  // Tile t's K and V rows into stage st (kv_tile.cuh); rows past hi zeroed.
  auto load_tile = [&](int t, int st) {
    __nv_bfloat16* sk = tiles + (2 * st) * L::kTileElems;
    copy_kv_tile<D, kTile, kThreads, L::kLd>(sk, sk + L::kTileElems, k_cache, v_cache, table, b.block_size,
                                             lo + static_cast<int64_t>(t) * kTile, hi + 1, kv_row, kv_offset);
  };
  if (num_tiles > 0) load_tile(0, 0);

  // This lane's share of the scaled query rows as mma A fragments: row grp
  // (query head kvh * G + grp), columns quad * 2 + {0, 1} and + 8 of each
  // 16-wide k-step.
  uint32_t qa[D / 16][2];
  {
    const float* qrow = q + static_cast<int64_t>(token) * q_stride + static_cast<int64_t>(kvh * G + grp) * D;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const int c = kk * 16 + quad * 2;
      qa[kk][0] = grp < G ? pack_bf16(qrow[c] * scale, qrow[c + 1] * scale) : 0u;
      qa[kk][1] = grp < G ? pack_bf16(qrow[c + 8] * scale, qrow[c + 9] * scale) : 0u;
    }
  }
  // Output accumulators: n-tile dt covers dims dt * 8 .. + 7; this lane holds
  // row grp, dims dt * 8 + quad * 2 + {0, 1} in [0..1] (rows 8..15 in [2..3]
  // stay zero).
  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float m = -FLT_MAX, l = 0.0f;  // row grp's running max and sum over this warp's keys

  for (int t = 0; t < num_tiles; ++t) {
    const int st = t & 1;
    await_kv_tile(t, num_tiles, load_tile);  // tile t in stage st, visible to every warp
    const int64_t key0 = lo + static_cast<int64_t>(t) * kTile + warp * kKeysPerWarp;
    if (key0 <= hi) {
      const __nv_bfloat16* sk = tiles + (2 * st) * L::kTileElems + warp * kKeysPerWarp * L::kLd;
      const __nv_bfloat16* sv = sk + L::kTileElems;
      // S (row grp, keys n * 8 + quad * 2 + {0, 1}) = Q K^T over this warp's 16 keys.
      float sc[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t kb[4];
        ldmatrix_x4(kb, k_fragment_row(sk, L::kLd, 0, kk * 16, lane));
        // Rows 8..15 of A are zero: no query heads there.
        mma_16816(sc[0], qa[kk][0], 0u, qa[kk][1], 0u, kb[0], kb[1]);
        mma_16816(sc[1], qa[kk][0], 0u, qa[kk][1], 0u, kb[2], kb[3]);
      }
      float mx = -FLT_MAX;
      bool valid[2][2];
#pragma unroll
      for (int n = 0; n < 2; ++n) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          valid[n][e] = key0 + n * 8 + quad * 2 + e <= hi;
          if (valid[n][e]) mx = fmaxf(mx, sc[n][e]);
        }
      }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m, mx);
      const float correction = __expf(m - m_new);
      float p[2][2], sum = 0.0f;
#pragma unroll
      for (int n = 0; n < 2; ++n) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          p[n][e] = valid[n][e] ? __expf(sc[n][e] - m_new) : 0.0f;
          sum += p[n][e];
        }
      }
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      l = l * correction + sum;
      m = m_new;
      // P as the A operand: keys quad * 2 + {0, 1} are the first n-tile's
      // columns, keys 8 + quad * 2 + {0, 1} the second's.
      const uint32_t pa0 = pack_bf16(p[0][0], p[0][1]), pa2 = pack_bf16(p[1][0], p[1][1]);
#pragma unroll
      for (int dt = 0; dt < D / 16; ++dt) {
        uint32_t vb[4];
        ldmatrix_x4_trans(vb, a_fragment_row(sv, L::kLd, 0, dt * 16, lane));
        o[2 * dt][0] *= correction;
        o[2 * dt][1] *= correction;
        o[2 * dt + 1][0] *= correction;
        o[2 * dt + 1][1] *= correction;
        mma_16816(o[2 * dt], pa0, 0u, pa2, 0u, vb[0], vb[1]);
        mma_16816(o[2 * dt + 1], pa0, 0u, pa2, 0u, vb[2], vb[3]);
      }
    }
    __syncthreads();  // stage st free for tile t + 2
  }

  // Merge the warps: each leaves its rows' outputs, max and sum.
  __syncthreads();
  float* merge_o = reinterpret_cast<float*>(smem);  // [kWarps][8][D]
  float* merge_m = merge_o + kWarps * 8 * D;        // [kWarps][8]
  float* merge_l = merge_m + kWarps * 8;
  if (grp < G) {
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      float* dst = merge_o + (warp * 8 + grp) * D + dt * 8 + quad * 2;
      dst[0] = o[dt][0];
      dst[1] = o[dt][1];
    }
    if (quad == 0) {
      merge_m[warp * 8 + grp] = m;
      merge_l[warp * 8 + grp] = l;
    }
  }
  __syncthreads();
  // Unsplit, the output; split, the block's partial.
  const int64_t part_stride = D + 2;
  float* part = split.splits == 1 ? nullptr
                                  : split.partials + (static_cast<int64_t>(blockIdx.x) * split.splits + blockIdx.y) *
                                                         G * part_stride;
  for (int e = threadIdx.x; e < G * D; e += kThreads) {
    const int g = e / D, d = e % D;
    float total_max = -FLT_MAX;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      if (merge_l[w * 8 + g] > 0.0f) total_max = fmaxf(total_max, merge_m[w * 8 + g]);
    }
    float total = 0.0f, v = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float lw = merge_l[w * 8 + g];
      if (lw > 0.0f) {
        const float f = __expf(merge_m[w * 8 + g] - total_max);
        total += lw * f;
        v += merge_o[(w * 8 + g) * D + d] * f;
      }
    }
    if (split.splits == 1) {
      out[(static_cast<int64_t>(token) * num_q_heads + kvh * G + g) * D + d] = total > 0.0f ? v / total : 0.0f;
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
  for (int e = threadIdx.x; e < G * D; e += kThreads) {
    const int g = e / D, d = e % D;
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
    out[(static_cast<int64_t>(token) * num_q_heads + kvh * G + g) * D + d] = total > 0.0f ? v / total : 0.0f;
  }
  if (threadIdx.x == 0) split.counters[blockIdx.x] = 0;  // ready for the next launch (or graph replay)
}

template <int D, int G>
void launch_decode(float* out, const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                   const __nv_bfloat16* v_cache, const PagedAttentionArgs& b, int64_t num_q_heads,
                   int64_t num_kv_heads, float scale, int64_t sliding_window, const DecodeSplit& split,
                   cudaStream_t stream) {
  using L = DecodeLayout<D>;
  allow_dynamic_smem<decode_gqa_kernel<D, G>>(L::kBytes);
  const dim3 grid(static_cast<unsigned>(b.num_seqs * num_kv_heads), static_cast<unsigned>(split.splits));
  launch_kernel_smem(decode_gqa_kernel<D, G>, grid, kThreads, L::kBytes, stream, out, q, q_stride, k_cache, v_cache,
                     b, static_cast<int>(num_q_heads), static_cast<int>(num_kv_heads), scale, sliding_window, split);
  CUDA_CHECK_LAUNCH();
}

// false when the group size G = QH / KV has no kernel instance (above 8).
// Qwen2.5 models have G = 5, 6 and 7, Llama and Qwen3 2, 4 and 8.
template <int D>
bool dispatch_group(float* out, const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                    const __nv_bfloat16* v_cache, const PagedAttentionArgs& b, int64_t num_q_heads,
                    int64_t num_kv_heads, float scale, int64_t sliding_window, const DecodeSplit& split,
                    cudaStream_t stream) {
  switch (num_q_heads / num_kv_heads) {
#define LLMCTL_DECODE_GROUP(G)                                                                                        \
  case G:                                                                                                             \
    launch_decode<D, G>(out, q, q_stride, k_cache, v_cache, b, num_q_heads, num_kv_heads, scale, sliding_window,     \
                        split, stream);                                                                               \
    return true;
    LLMCTL_DECODE_GROUP(1)
    LLMCTL_DECODE_GROUP(2)
    LLMCTL_DECODE_GROUP(3)
    LLMCTL_DECODE_GROUP(4)
    LLMCTL_DECODE_GROUP(5)
    LLMCTL_DECODE_GROUP(6)
    LLMCTL_DECODE_GROUP(7)
    LLMCTL_DECODE_GROUP(8)
#undef LLMCTL_DECODE_GROUP
    default:
      return false;
  }
}

// Splits for this batch: enough blocks to fill the GPU, each with at least
// kMinKeysPerSplit keys of the longest context the block table allows.
// A rule that counted whole waves from that bound (three splits for 512
// pairs, where unsplit leaves a second wave a quarter full) sped the
// uniform batch-64 / 2,048-context step up 4 % on an H100 but slowed
// ShareGPT-like decode graph steps by 2 % in two runs: real contexts are
// shorter than the bound and uneven, so the waves blur and every extra
// split is pure merge overhead.
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
  if (head_dim != 64 && head_dim != 128) return false;
  // 16-byte copies of K/V rows (an allocation is 256-byte aligned; a
  // caller's offset view might not be).
  if (reinterpret_cast<uintptr_t>(k_cache) % 16 != 0 || reinterpret_cast<uintptr_t>(v_cache) % 16 != 0) return false;
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
  if (head_dim == 64) {
    return dispatch_group<64>(out, q, q_stride, k_cache, v_cache, batch, num_q_heads, num_kv_heads, scale,
                              sliding_window, split, stream);
  }
  return dispatch_group<128>(out, q, q_stride, k_cache, v_cache, batch, num_q_heads, num_kv_heads, scale,
                             sliding_window, split, stream);
}

}  // namespace llmctl::kernels::cuda
