// Attention for decode-only steps with many sequences: one block per
// (sequence, KV head) serves all G query heads that share that KV head, so
// each key and value row is read from the cache once instead of G times
// (with GQA the KV reads are most of a batched decode step's attention
// traffic). The block's warps split the keys; per key a warp forms G dot
// products (lanes split head_dim, kPerLane consecutive bf16 elements each,
// one vector load per K or V row) and keeps G online softmaxes; the block
// then merges its warps. Small batches keep paged_attention.cu's kernel,
// which splits long contexts over blocks to fill the GPU instead.
#include <cfloat>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/kv_bf16.cuh"
#include "kernels/cuda/launch.cuh"

namespace llmctl::kernels::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
// Enough (sequence, KV head) blocks to give every SM of an H100/H200 a block
// without splitting keys; below this the split kernel is faster.
constexpr int64_t kMinBlocks = 132;

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
                                                              int head_dim, float scale, int64_t sliding_window) {
  pdl_begin();
  __shared__ DecodeShared<kPerLane, G> sh;
  const int s = static_cast<int>(blockIdx.x) / num_kv_heads, kvh = static_cast<int>(blockIdx.x) % num_kv_heads;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int token = b.query_start[s];
  const int64_t ctx = b.context_len[s];
  const int64_t pos = ctx - 1;
  const int64_t lo = sliding_window > 0 && pos - sliding_window + 1 > 0 ? pos - sliding_window + 1 : 0;
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
  for (int64_t j = lo + warp; j <= pos; j += kWarps) {
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
  // Merge: thread t writes elements t, t + kThreads, ... of the G outputs.
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
    out[(static_cast<int64_t>(token) * num_q_heads + kvh * G + g) * head_dim + d] = total > 0.0f ? v / total : 0.0f;
  }
}

template <int kPerLane, int G>
void launch_decode(float* out, const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                   const __nv_bfloat16* v_cache, const PagedAttentionArgs& b, int64_t num_q_heads,
                   int64_t num_kv_heads, int64_t head_dim, float scale, int64_t sliding_window, cudaStream_t stream) {
  launch_kernel(decode_gqa_kernel<kPerLane, G>, static_cast<unsigned>(b.num_seqs * num_kv_heads), kThreads, stream,
                out, q, q_stride, k_cache, v_cache, b, static_cast<int>(num_q_heads), static_cast<int>(num_kv_heads),
                static_cast<int>(head_dim), scale, sliding_window);
  CUDA_CHECK_LAUNCH();
}

template <int kPerLane>
bool dispatch_group(float* out, const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                    const __nv_bfloat16* v_cache, const PagedAttentionArgs& b, int64_t num_q_heads,
                    int64_t num_kv_heads, int64_t head_dim, float scale, int64_t sliding_window, cudaStream_t stream) {
  switch (num_q_heads / num_kv_heads) {
    case 1:
      launch_decode<kPerLane, 1>(out, q, q_stride, k_cache, v_cache, b, num_q_heads, num_kv_heads, head_dim, scale,
                                 sliding_window, stream);
      return true;
    case 2:
      launch_decode<kPerLane, 2>(out, q, q_stride, k_cache, v_cache, b, num_q_heads, num_kv_heads, head_dim, scale,
                                 sliding_window, stream);
      return true;
    case 4:
      launch_decode<kPerLane, 4>(out, q, q_stride, k_cache, v_cache, b, num_q_heads, num_kv_heads, head_dim, scale,
                                 sliding_window, stream);
      return true;
    case 8:
      launch_decode<kPerLane, 8>(out, q, q_stride, k_cache, v_cache, b, num_q_heads, num_kv_heads, head_dim, scale,
                                 sliding_window, stream);
      return true;
    default:
      return false;
  }
}

}  // namespace

bool decode_gqa_attention(float* out, const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                          const __nv_bfloat16* v_cache, const PagedAttentionArgs& batch, int64_t num_q_heads,
                          int64_t num_kv_heads, int64_t head_dim,
                          float scale, int64_t sliding_window, cudaStream_t stream) {
  if (batch.num_tokens != batch.num_seqs) return false;  // prefill tokens present, or the count is unknown
  if (static_cast<int64_t>(batch.num_seqs) * num_kv_heads < kMinBlocks) return false;
  if (head_dim <= 64) {
    return dispatch_group<2>(out, q, q_stride, k_cache, v_cache, batch, num_q_heads, num_kv_heads, head_dim, scale,
                             sliding_window, stream);
  }
  if (head_dim <= 128) {
    return dispatch_group<4>(out, q, q_stride, k_cache, v_cache, batch, num_q_heads, num_kv_heads, head_dim, scale,
                             sliding_window, stream);
  }
  return false;
}

}  // namespace llmctl::kernels::cuda
