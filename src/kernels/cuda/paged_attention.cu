// Causal attention over the paged KV cache, for decode, prefill and chunked
// prefill alike (see kernels::AttentionBatch). A straightforward kernel:
// one block per (sequence, query head, query slice); its warps split the keys
// of one query, each keeping an online softmax (running max, sum, output),
// and the block merges them. Lanes split head_dim, so a key's dot product is
// a warp reduction. GQA: query head h reads kv head h / (QH / KV).
// Not yet: split-K over several blocks for long decode contexts, tensor-core
// tiles for long prefills (issue #7).
#include <cfloat>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

namespace llmctl::kernels::cuda {
namespace {

struct PagedAttentionLaunch {
  static constexpr int kWarps = 8;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kMaxSlices = 64;
  static constexpr int kQueriesPerSlice = 32;
  static constexpr int kMaxHeadDim = 256;
  dim3 grid;
  PagedAttentionLaunch(const PagedAttentionArgs& b, int64_t num_q_heads) {
    // The host does not know each sequence's query count (it is device
    // data); the block table bounds it, and extra slices exit at once.
    const int64_t bound = static_cast<int64_t>(b.max_blocks_per_seq) * b.block_size;
    int64_t slices = (bound + kQueriesPerSlice - 1) / kQueriesPerSlice;
    slices = slices < 1 ? 1 : (slices > kMaxSlices ? kMaxSlices : slices);
    grid = dim3(static_cast<unsigned>(b.num_seqs * num_q_heads), static_cast<unsigned>(slices));
  }
};

// kPerLane: head_dim elements each lane holds (head_dim <= 32 * kPerLane).
template <int kPerLane>
__global__ void paged_attention_kernel(float* out, const float* q, int64_t q_stride, const float* k_cache,
                                       const float* v_cache, PagedAttentionArgs b, int num_q_heads, int num_kv_heads,
                                       int head_dim, float scale, int64_t sliding_window) {
  constexpr int kWarps = PagedAttentionLaunch::kWarps;
  __shared__ float warp_max[kWarps], warp_sum_exp[kWarps];
  __shared__ float warp_acc[kWarps][32 * kPerLane];

  const int s = blockIdx.x / num_q_heads, h = blockIdx.x % num_q_heads;
  const int kvh = h / (num_q_heads / num_kv_heads);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int q_begin = b.query_start[s], q_end = b.query_start[s + 1];
  const int64_t ctx = b.context_len[s];
  const int32_t* table = b.block_tables + static_cast<int64_t>(s) * b.max_blocks_per_seq;
  const int64_t kv_row = static_cast<int64_t>(num_kv_heads) * head_dim;

  for (int t = q_begin + static_cast<int>(blockIdx.y); t < q_end; t += static_cast<int>(gridDim.y)) {
    const int64_t pos = ctx - (q_end - t);
    const int64_t lo = sliding_window > 0 ? (pos - sliding_window + 1 > 0 ? pos - sliding_window + 1 : 0) : 0;
    const float* qv = q + static_cast<int64_t>(t) * q_stride + static_cast<int64_t>(h) * head_dim;
    float qr[kPerLane], acc[kPerLane];
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      const int d = lane + 32 * i;
      qr[i] = d < head_dim ? qv[d] : 0.0f;
      acc[i] = 0.0f;
    }
    float m = -FLT_MAX, l = 0.0f;
    for (int64_t j = lo + warp; j <= pos; j += kWarps) {
      const int64_t slot = static_cast<int64_t>(table[j / b.block_size]) * b.block_size + j % b.block_size;
      const float* kp = k_cache + slot * kv_row + static_cast<int64_t>(kvh) * head_dim;
      const float* vp = v_cache + slot * kv_row + static_cast<int64_t>(kvh) * head_dim;
      float part = 0.0f;
#pragma unroll
      for (int i = 0; i < kPerLane; ++i) {
        const int d = lane + 32 * i;
        if (d < head_dim) part += qr[i] * kp[d];
      }
      const float score = warp_sum(part) * scale;
      const float m_new = fmaxf(m, score);
      const float correction = expf(m - m_new);
      const float p = expf(score - m_new);
      l = l * correction + p;
#pragma unroll
      for (int i = 0; i < kPerLane; ++i) {
        const int d = lane + 32 * i;
        acc[i] = acc[i] * correction + (d < head_dim ? p * vp[d] : 0.0f);
      }
      m = m_new;
    }
    if (lane == 0) {
      warp_max[warp] = m;
      warp_sum_exp[warp] = l;
    }
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) warp_acc[warp][lane + 32 * i] = acc[i];
    __syncthreads();
    // Merge: a warp that saw no key has l = 0 and contributes nothing.
    float total_max = -FLT_MAX;
    for (int w = 0; w < kWarps; ++w) {
      if (warp_sum_exp[w] > 0.0f) total_max = fmaxf(total_max, warp_max[w]);
    }
    float total = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      if (warp_sum_exp[w] > 0.0f) total += warp_sum_exp[w] * expf(warp_max[w] - total_max);
    }
    const float inv = 1.0f / total;
    float* o = out + (static_cast<int64_t>(t) * num_q_heads + h) * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
      float v = 0.0f;
      for (int w = 0; w < kWarps; ++w) {
        if (warp_sum_exp[w] > 0.0f) v += warp_acc[w][d] * expf(warp_max[w] - total_max);
      }
      o[d] = v * inv;
    }
    __syncthreads();  // the shared partials are rewritten for the next query
  }
}

template <int kPerLane>
void launch_paged_attention(float* out, const float* q, int64_t q_stride, const float* k_cache, const float* v_cache,
                            const PagedAttentionArgs& b, int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim,
                            float scale, int64_t sliding_window, cudaStream_t stream) {
  const PagedAttentionLaunch cfg(b, num_q_heads);
  paged_attention_kernel<kPerLane><<<cfg.grid, PagedAttentionLaunch::kThreads, 0, stream>>>(
      out, q, q_stride, k_cache, v_cache, b, static_cast<int>(num_q_heads), static_cast<int>(num_kv_heads),
      static_cast<int>(head_dim), scale, sliding_window);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void paged_attention(float* out, const float* q, int64_t q_stride, const float* k_cache, const float* v_cache,
                     const PagedAttentionArgs& batch, int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim,
                     float scale, int64_t sliding_window, cudaStream_t stream) {
  CUDA_REQUIRE(batch.num_seqs >= 0 && batch.block_size > 0 && batch.max_blocks_per_seq > 0);
  CUDA_REQUIRE(num_q_heads > 0 && num_kv_heads > 0 && num_q_heads % num_kv_heads == 0);
  CUDA_REQUIRE(head_dim > 0 && head_dim <= PagedAttentionLaunch::kMaxHeadDim);
  CUDA_REQUIRE(q_stride >= num_q_heads * head_dim);
  CUDA_REQUIRE(static_cast<int64_t>(batch.num_seqs) * num_q_heads < (int64_t{1} << 31));
  if (batch.num_seqs == 0) return;
  if (head_dim <= 32) {
    launch_paged_attention<1>(out, q, q_stride, k_cache, v_cache, batch, num_q_heads, num_kv_heads, head_dim, scale,
                              sliding_window, stream);
  } else if (head_dim <= 64) {
    launch_paged_attention<2>(out, q, q_stride, k_cache, v_cache, batch, num_q_heads, num_kv_heads, head_dim, scale,
                              sliding_window, stream);
  } else if (head_dim <= 128) {
    launch_paged_attention<4>(out, q, q_stride, k_cache, v_cache, batch, num_q_heads, num_kv_heads, head_dim, scale,
                              sliding_window, stream);
  } else {
    launch_paged_attention<8>(out, q, q_stride, k_cache, v_cache, batch, num_q_heads, num_kv_heads, head_dim, scale,
                              sliding_window, stream);
  }
}

}  // namespace llmctl::kernels::cuda
