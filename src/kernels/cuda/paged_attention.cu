// Causal attention over the paged KV cache, for decode, prefill and chunked
// prefill alike (see kernels::AttentionBatch). One block per (sequence, query
// head, slice); its warps split the keys of one query, each keeping an online
// softmax (running max, sum, output), and the block merges them. Lanes split
// head_dim (kPerLane consecutive elements each, read from the bf16 cache in
// one vector load), so a key's dot product is a warp reduction. GQA: query head h
// reads kv head h / (QH / KV). For prefill the slices split a sequence's
// queries; for decode, when the batch has too few (sequence, head) pairs to
// fill the GPU, they split its keys (flash-decoding) and the last block of a
// pair merges the partial softmaxes.
// With the step's token count known, steps with prefill tokens take the
// tensor-core kernel in flash_prefill.cu, and decode-only steps (of GQA
// groups up to 8 and head dims up to 128) the KV-head-grouped kernel in
// decode_attention.cu, which reads each K/V row once for its query heads.
#include <cfloat>

#include "kernels/cuda/attention_scratch.cuh"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/kv_bf16.cuh"
#include "kernels/cuda/launch.cuh"

namespace llmctl::kernels::cuda {
namespace {

struct PagedAttentionLaunch {
  static constexpr int kWarps = 8;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kMaxSlices = 64;
  static constexpr int kQueriesPerSlice = 32;
  static constexpr int kMaxHeadDim = 256;
  // Split decode over keys until the grid has about this many blocks (a few
  // per multiprocessor); a batch with as many (sequence, head) pairs already
  // fills the GPU unsplit.
  static constexpr int64_t kDecodeTargetBlocks = 528;
  static constexpr int64_t kMinKeysPerSplit = 2 * kWarps;
  dim3 grid;
  int decode_splits = 1;
  PagedAttentionLaunch(const PagedAttentionArgs& b, int64_t num_q_heads) {
    // The host does not know each sequence's query count (it is device
    // data); the block table bounds it, and extra slices exit at once.
    const int64_t bound = static_cast<int64_t>(b.max_blocks_per_seq) * b.block_size;
    int64_t slices = (bound + kQueriesPerSlice - 1) / kQueriesPerSlice;
    slices = slices < 1 ? 1 : (slices > kMaxSlices ? kMaxSlices : slices);
    // Decode splits: enough blocks to fill the GPU, but at least
    // kMinKeysPerSplit keys of the longest possible context in each.
    const int64_t pairs = b.num_seqs * num_q_heads;
    int64_t splits = (kDecodeTargetBlocks + pairs - 1) / pairs;
    const int64_t by_keys = (bound + kMinKeysPerSplit - 1) / kMinKeysPerSplit;
    splits = splits < by_keys ? splits : by_keys;
    splits = splits < kMaxSlices ? (splits < 1 ? 1 : splits) : kMaxSlices;
    decode_splits = static_cast<int>(splits);
    grid = dim3(static_cast<unsigned>(pairs), static_cast<unsigned>(slices > splits ? slices : splits));
  }
};

template <int kPerLane>
struct AttentionShared {
  float warp_max[PagedAttentionLaunch::kWarps];
  float warp_sum_exp[PagedAttentionLaunch::kWarps];
  float warp_acc[PagedAttentionLaunch::kWarps][32 * kPerLane];
  float split_max[PagedAttentionLaunch::kMaxSlices];  // then each split's merge weight
  float split_sum[PagedAttentionLaunch::kMaxSlices];
  bool last_split;
};

// One query over the keys at positions [begin, end) of a sequence: the
// block's warps split the keys, each keeping an online softmax (running max,
// sum of exponentials, weighted values), and leave their partials in `sh`.
// Returns (every thread) the merged max and sum; merged_value() gives the
// merged unnormalised output element relative to that max. A warp that saw
// no key has sum 0 and contributes nothing; an empty range gives sum 0.
// Lane l holds elements [l * kPerLane, (l + 1) * kPerLane) of head_dim;
// vec: head_dim is a multiple of kPerLane, so those loads are aligned.
template <int kPerLane>
__device__ float2 attend(AttentionShared<kPerLane>& sh, const float* qv, const __nv_bfloat16* k_cache,
                         const __nv_bfloat16* v_cache, const int32_t* table, int block_size, int64_t kv_row,
                         int64_t kv_offset, int head_dim, bool vec, float scale, int64_t begin, int64_t end) {
  constexpr int kWarps = PagedAttentionLaunch::kWarps;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int d0 = lane * kPerLane, in_range = head_dim - d0;  // this lane's elements, and how many are real
  float qr[kPerLane], acc[kPerLane];
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    qr[i] = i < in_range ? qv[d0 + i] : 0.0f;
    acc[i] = 0.0f;
  }
  float m = -FLT_MAX, l = 0.0f;
  // Unrolled so a second key's loads are in flight during the first's reduction.
#pragma unroll 2
  for (int64_t j = begin + warp; j < end; j += kWarps) {
    const int64_t slot = static_cast<int64_t>(table[j / block_size]) * block_size + j % block_size;
    const int64_t row = slot * kv_row + kv_offset + d0;
    float kr[kPerLane], vr[kPerLane];
    load_bf16_chunk<kPerLane>(kr, k_cache + row, in_range, vec);
    load_bf16_chunk<kPerLane>(vr, v_cache + row, in_range, vec);
    float part = 0.0f;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) part += qr[i] * kr[i];
    const float score = warp_sum(part) * scale;
    const float m_new = fmaxf(m, score);
    const float correction = expf(m - m_new);
    const float p = expf(score - m_new);
    l = l * correction + p;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) acc[i] = acc[i] * correction + p * vr[i];
    m = m_new;
  }
  if (lane == 0) {
    sh.warp_max[warp] = m;
    sh.warp_sum_exp[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) sh.warp_acc[warp][d0 + i] = acc[i];
  __syncthreads();
  float total_max = -FLT_MAX;
  for (int w = 0; w < kWarps; ++w) {
    if (sh.warp_sum_exp[w] > 0.0f) total_max = fmaxf(total_max, sh.warp_max[w]);
  }
  float total = 0.0f;
  for (int w = 0; w < kWarps; ++w) {
    if (sh.warp_sum_exp[w] > 0.0f) total += sh.warp_sum_exp[w] * expf(sh.warp_max[w] - total_max);
  }
  return make_float2(total_max, total);
}

template <int kPerLane>
__device__ float merged_value(const AttentionShared<kPerLane>& sh, int d, float total_max) {
  float v = 0.0f;
  for (int w = 0; w < PagedAttentionLaunch::kWarps; ++w) {
    if (sh.warp_sum_exp[w] > 0.0f) v += sh.warp_acc[w][d] * expf(sh.warp_max[w] - total_max);
  }
  return v;
}

// Block (x = sequence * heads + head, y). A sequence with several queries
// (prefill) gives each y a slice of its queries. A sequence with one query
// (decode), when decode_splits > 1, gives each y < decode_splits a slice of
// its keys (flash-decoding): each writes (max, sum, unnormalised output) to
// partials, and the last to finish, found with a per-(sequence, head)
// counter, merges them into out and resets the counter for the next call.
template <int kPerLane>
__global__ void paged_attention_kernel(float* out, const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                                       const __nv_bfloat16* v_cache, PagedAttentionArgs b, int num_q_heads,
                                       int num_kv_heads, int head_dim, float scale, int64_t sliding_window,
                                       int decode_splits,
                                       float* partials, int* counters) {
  pdl_begin();
  __shared__ AttentionShared<kPerLane> sh;
  const int s = blockIdx.x / num_q_heads, h = blockIdx.x % num_q_heads;
  const int kvh = h / (num_q_heads / num_kv_heads);
  const int q_begin = b.query_start[s], q_end = b.query_start[s + 1];
  const int64_t ctx = b.context_len[s];
  const int32_t* table = b.block_tables + static_cast<int64_t>(s) * b.max_blocks_per_seq;
  const int64_t kv_row = static_cast<int64_t>(num_kv_heads) * head_dim;
  const int64_t kv_offset = static_cast<int64_t>(kvh) * head_dim;
  const bool vec = head_dim % kPerLane == 0;
  const auto window_start = [&](int64_t pos) -> int64_t {
    return sliding_window > 0 ? (pos - sliding_window + 1 > 0 ? pos - sliding_window + 1 : 0) : 0;
  };

  if (q_end - q_begin == 1 && decode_splits > 1) {
    const int split = static_cast<int>(blockIdx.y);
    if (split >= decode_splits) return;
    const int64_t pos = ctx - 1, lo = window_start(pos);
    const int64_t per_split = (pos + 1 - lo + decode_splits - 1) / decode_splits;
    const int64_t begin = lo + split * per_split;
    const int64_t end = begin + per_split < pos + 1 ? begin + per_split : pos + 1;
    const float* qv = q + static_cast<int64_t>(q_begin) * q_stride + static_cast<int64_t>(h) * head_dim;
    const float2 ms = attend(sh, qv, k_cache, v_cache, table, b.block_size, kv_row, kv_offset, head_dim, vec, scale,
                             begin, begin < end ? end : begin);
    const int64_t stride = head_dim + 2;
    float* part = partials + (static_cast<int64_t>(blockIdx.x) * decode_splits + split) * stride;
    if (threadIdx.x == 0) {
      part[0] = ms.x;
      part[1] = ms.y;
    }
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) part[2 + d] = merged_value(sh, d, ms.x);
    __threadfence();  // partials visible device-wide before the counter says so
    __syncthreads();
    if (threadIdx.x == 0) sh.last_split = atomicAdd(&counters[blockIdx.x], 1) == decode_splits - 1;
    __syncthreads();
    if (!sh.last_split) return;
    __threadfence();
    // Other blocks' partials: read through L2 (__ldcg), never a stale L1
    // line. Each split's weight exp(max_i - max) / total goes to shared
    // memory once (one thread per split), then every output element sums
    // the splits with several loads in flight.
    const float* base = partials + static_cast<int64_t>(blockIdx.x) * decode_splits * stride;
    if (threadIdx.x < decode_splits) {
      sh.split_max[threadIdx.x] = __ldcg(base + threadIdx.x * stride);
      sh.split_sum[threadIdx.x] = __ldcg(base + threadIdx.x * stride + 1);
    }
    __syncthreads();
    float total_max = -FLT_MAX;
    for (int i = 0; i < decode_splits; ++i) {
      if (sh.split_sum[i] > 0.0f) total_max = fmaxf(total_max, sh.split_max[i]);
    }
    float total = 0.0f;
    for (int i = 0; i < decode_splits; ++i) {
      if (sh.split_sum[i] > 0.0f) total += sh.split_sum[i] * expf(sh.split_max[i] - total_max);
    }
    __syncthreads();  // everyone has read split_max before it is overwritten
    if (threadIdx.x < decode_splits) {
      const int i = threadIdx.x;
      sh.split_max[i] = sh.split_sum[i] > 0.0f ? expf(sh.split_max[i] - total_max) / total : 0.0f;
    }
    __syncthreads();
    float* o = out + (static_cast<int64_t>(q_begin) * num_q_heads + h) * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
      float v = 0.0f;
#pragma unroll 8
      for (int i = 0; i < decode_splits; ++i) v += __ldcg(base + i * stride + 2 + d) * sh.split_max[i];
      o[d] = v;
    }
    if (threadIdx.x == 0) counters[blockIdx.x] = 0;
    return;
  }

  for (int t = q_begin + static_cast<int>(blockIdx.y); t < q_end; t += static_cast<int>(gridDim.y)) {
    const int64_t pos = ctx - (q_end - t);
    const float* qv = q + static_cast<int64_t>(t) * q_stride + static_cast<int64_t>(h) * head_dim;
    const float2 ms = attend(sh, qv, k_cache, v_cache, table, b.block_size, kv_row, kv_offset, head_dim, vec, scale,
                             window_start(pos), pos + 1);
    const float inv = 1.0f / ms.y;
    float* o = out + (static_cast<int64_t>(t) * num_q_heads + h) * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) o[d] = merged_value(sh, d, ms.x) * inv;
    __syncthreads();  // the shared partials are rewritten for the next query
  }
}

// Grows the split partials and counters for this launch (counters start at
// zero and every merge leaves them there).
void ensure_scratch(AttentionScratch& scratch, const PagedAttentionLaunch& cfg, int64_t head_dim, cudaStream_t stream) {
  if (cfg.decode_splits <= 1) return;
  const auto pairs = static_cast<std::size_t>(cfg.grid.x);
  const std::size_t floats =
      pairs * static_cast<std::size_t>(cfg.decode_splits) * static_cast<std::size_t>(head_dim + 2);
  grow_attention_scratch(scratch, floats, pairs, stream);
}

template <int kPerLane>
void launch_paged_attention(float* out, const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                            const __nv_bfloat16* v_cache, const PagedAttentionArgs& b, int64_t num_q_heads,
                            int64_t num_kv_heads, int64_t head_dim, float scale, int64_t sliding_window,
                            AttentionScratch& scratch, cudaStream_t stream) {
  const PagedAttentionLaunch cfg(b, num_q_heads);
  ensure_scratch(scratch, cfg, head_dim, stream);
  launch_kernel(paged_attention_kernel<kPerLane>, cfg.grid, PagedAttentionLaunch::kThreads, stream, out, q, q_stride,
                k_cache, v_cache, b, static_cast<int>(num_q_heads), static_cast<int>(num_kv_heads),
                static_cast<int>(head_dim), scale, sliding_window, cfg.decode_splits, scratch.partials,
                scratch.counters);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void paged_attention(float* out, const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                     const __nv_bfloat16* v_cache, const PagedAttentionArgs& batch, int64_t num_q_heads,
                     int64_t num_kv_heads, int64_t head_dim, float scale, int64_t sliding_window,
                     AttentionScratch& scratch, cudaStream_t stream) {
  CUDA_REQUIRE(batch.num_seqs >= 0 && batch.block_size > 0 && batch.max_blocks_per_seq > 0);
  CUDA_REQUIRE(num_q_heads > 0 && num_kv_heads > 0 && num_q_heads % num_kv_heads == 0);
  CUDA_REQUIRE(head_dim > 0 && head_dim <= PagedAttentionLaunch::kMaxHeadDim);
  CUDA_REQUIRE(q_stride >= num_q_heads * head_dim);
  CUDA_REQUIRE(static_cast<int64_t>(batch.num_seqs) * num_q_heads < (int64_t{1} << 31));
  if (batch.num_seqs == 0) return;
  const int32_t decodes = batch.num_decode_seqs;
  if (batch.num_tokens > batch.num_seqs && decodes > 0 && decodes < batch.num_seqs) {
    // A mixed step: its leading decode rows on the decode kernels, the rest
    // on the prefill kernel, so no decode row takes a whole tensor-core tile
    // of queries per query head. Both parts index q and out through their
    // own query_start entries, which stay absolute.
    PagedAttentionArgs decode = batch;
    decode.num_seqs = decodes;
    decode.num_tokens = decodes;
    decode.num_decode_seqs = 0;
    PagedAttentionArgs prefill = batch;
    prefill.num_seqs = batch.num_seqs - decodes;
    prefill.query_start = batch.query_start + decodes;
    prefill.context_len = batch.context_len + decodes;
    prefill.block_tables = batch.block_tables + static_cast<int64_t>(decodes) * batch.max_blocks_per_seq;
    prefill.num_tokens = batch.num_tokens - decodes;
    prefill.num_decode_seqs = 0;
    paged_attention(out, q, q_stride, k_cache, v_cache, decode, num_q_heads, num_kv_heads, head_dim, scale,
                    sliding_window, scratch, stream);
    paged_attention(out, q, q_stride, k_cache, v_cache, prefill, num_q_heads, num_kv_heads, head_dim, scale,
                    sliding_window, scratch, stream);
    return;
  }
  if (flash_prefill_attention(out, q, q_stride, k_cache, v_cache, batch, num_q_heads, num_kv_heads, head_dim, scale,
                              sliding_window, stream) ||
      decode_gqa_attention(out, q, q_stride, k_cache, v_cache, batch, num_q_heads, num_kv_heads, head_dim, scale,
                           sliding_window, scratch, stream)) {
    return;
  }
  if (head_dim <= 32) {
    launch_paged_attention<1>(out, q, q_stride, k_cache, v_cache, batch, num_q_heads, num_kv_heads, head_dim, scale,
                              sliding_window, scratch, stream);
  } else if (head_dim <= 64) {
    launch_paged_attention<2>(out, q, q_stride, k_cache, v_cache, batch, num_q_heads, num_kv_heads, head_dim, scale,
                              sliding_window, scratch, stream);
  } else if (head_dim <= 128) {
    launch_paged_attention<4>(out, q, q_stride, k_cache, v_cache, batch, num_q_heads, num_kv_heads, head_dim, scale,
                              sliding_window, scratch, stream);
  } else {
    launch_paged_attention<8>(out, q, q_stride, k_cache, v_cache, batch, num_q_heads, num_kv_heads, head_dim, scale,
                              sliding_window, scratch, stream);
  }
}

}  // namespace llmctl::kernels::cuda
