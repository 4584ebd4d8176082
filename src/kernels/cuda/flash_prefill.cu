// Causal attention for steps that carry prefill (or chunked-prefill) tokens,
// on the tensor cores: flash-attention style tiles over the paged KV cache.
// One block of four warps takes 64 queries of one (sequence, query head);
// each warp owns 16 of them. Per tile of 64 keys the block copies K and V
// from the bf16 cache into shared memory (16-byte loads, no conversion); each warp computes its 16 x 64
// scores with bf16 WMMA (fp32 accumulate), runs the online softmax (running
// max and sum per query, fp32), and accumulates P * V into its fp32 output
// rows. Queries are scaled before rounding so the scores need no extra pass.
//
// Why bf16 operands: the weights already are bf16 and transformers computes
// attention in bf16 for bf16 models; the fp32 softmax state keeps long rows
// accurate. Decode steps keep the CUDA-core kernel (paged_attention.cu),
// which is bandwidth bound and gains nothing from tensor cores at one query.
#include <cuda_bf16.h>
#include <mma.h>

#include <cfloat>
#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.cuh"

namespace llmctl::kernels::cuda {
namespace {

constexpr int kTileQ = 64;  // queries per block
constexpr int kTileK = 64;  // keys per iteration
constexpr int kWarps = 4;   // 16 queries each
constexpr int kThreads = kWarps * 32;
constexpr int kRowsPerWarp = kTileQ / kWarps;

// Shared memory layout for head dim D. Row pitches are padded (against bank
// conflicts) but keep every 16-row / 16-column WMMA tile 32-byte aligned.
template <int D>
struct FlashLayout {
  static constexpr int kLdQkv = D + 8;        // bf16
  static constexpr int kLdS = kTileK + 4;     // fp32
  static constexpr int kLdP = kTileK + 8;     // bf16
  static constexpr int kLdO = D + 4;          // fp32
  static constexpr int align(int bytes) { return (bytes + 127) / 128 * 128; }
  static constexpr int kQ = 0;
  static constexpr int kK = kQ + align(kTileQ * kLdQkv * 2);
  static constexpr int kV = kK + align(kTileK * kLdQkv * 2);
  static constexpr int kS = kV + align(kTileK * kLdQkv * 2);
  static constexpr int kP = kS + align(kWarps * kRowsPerWarp * kLdS * 4);
  static constexpr int kO = kP + align(kWarps * kRowsPerWarp * kLdP * 2);
  static constexpr int kBytes = kO + align(kWarps * kRowsPerWarp * kLdO * 4);
};

template <int D>
__global__ void __launch_bounds__(kThreads) flash_prefill_kernel(float* out, const float* q, int64_t q_stride,
                                                                 const __nv_bfloat16* k_cache,
                                                                 const __nv_bfloat16* v_cache,
                                                                 PagedAttentionArgs b, int num_q_heads,
                                                                 int num_kv_heads, float scale,
                                                                 int64_t sliding_window) {
  using namespace nvcuda;
  using L = FlashLayout<D>;
  pdl_begin();
  extern __shared__ __align__(128) unsigned char smem[];
  auto* sq = reinterpret_cast<__nv_bfloat16*>(smem + L::kQ);
  auto* sk = reinterpret_cast<__nv_bfloat16*>(smem + L::kK);
  auto* sv = reinterpret_cast<__nv_bfloat16*>(smem + L::kV);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* ss = reinterpret_cast<float*>(smem + L::kS) + warp * kRowsPerWarp * L::kLdS;
  auto* sp = reinterpret_cast<__nv_bfloat16*>(smem + L::kP) + warp * kRowsPerWarp * L::kLdP;
  float* so = reinterpret_cast<float*>(smem + L::kO) + warp * kRowsPerWarp * L::kLdO;

  const int s = static_cast<int>(blockIdx.x) / num_q_heads, h = static_cast<int>(blockIdx.x) % num_q_heads;
  const int kvh = h / (num_q_heads / num_kv_heads);
  const int q_begin = b.query_start[s], q_count = b.query_start[s + 1] - q_begin;
  const int tile0 = static_cast<int>(blockIdx.y) * kTileQ;
  if (tile0 >= q_count) return;
  const int64_t ctx = b.context_len[s];
  const int64_t first_pos = ctx - q_count + tile0;
  const int last = (tile0 + kTileQ < q_count ? tile0 + kTileQ : q_count) - 1;
  const int64_t kv_end = ctx - q_count + last + 1;
  int64_t kv_begin = 0;
  if (sliding_window > 0 && first_pos - sliding_window + 1 > 0) kv_begin = first_pos - sliding_window + 1;
  const int32_t* table = b.block_tables + static_cast<int64_t>(s) * b.max_blocks_per_seq;

  // Q tile, pre-scaled; rows past the sequence's queries are zero.
  for (int i = threadIdx.x; i < kTileQ * (D / 4); i += kThreads) {
    const int r = i / (D / 4), c = (i % (D / 4)) * 4;
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (tile0 + r < q_count) {
      v = *reinterpret_cast<const float4*>(q + static_cast<int64_t>(q_begin + tile0 + r) * q_stride +
                                           static_cast<int64_t>(h) * D + c);
    }
    __nv_bfloat16* dst = sq + r * L::kLdQkv + c;
    dst[0] = __float2bfloat16(v.x * scale);
    dst[1] = __float2bfloat16(v.y * scale);
    dst[2] = __float2bfloat16(v.z * scale);
    dst[3] = __float2bfloat16(v.w * scale);
  }
  for (int i = lane; i < kRowsPerWarp * D; i += 32) so[(i / D) * L::kLdO + i % D] = 0.0f;

  // Two lanes per query row, each over half of a tile's keys.
  const int row = lane / 2, half = lane % 2;
  const int qi = tile0 + warp * kRowsPerWarp + row;
  const bool row_valid = qi < q_count;
  const int64_t qpos = ctx - q_count + qi;
  const int64_t row_lo = sliding_window > 0 && qpos - sliding_window + 1 > 0 ? qpos - sliding_window + 1 : 0;
  const bool warp_active = tile0 + warp * kRowsPerWarp < q_count;
  float m = -FLT_MAX, l = 0.0f;

  for (int64_t kt = kv_begin; kt < kv_end; kt += kTileK) {
    __syncthreads();  // the previous tile's K/V are no longer read
    // 8 bf16 (16 bytes) per thread and load; keys past the range are zero.
    for (int i = threadIdx.x; i < kTileK * (D / 8); i += kThreads) {
      const int r = i / (D / 8), c = (i % (D / 8)) * 8;
      const int64_t pos = kt + r;
      uint4 kv8 = make_uint4(0, 0, 0, 0), vv8 = kv8;
      if (pos < kv_end) {
        const int64_t block = table[pos / b.block_size];
        const int64_t slot = block * b.block_size + pos % b.block_size;
        const int64_t off = (slot * num_kv_heads + kvh) * D + c;
        kv8 = *reinterpret_cast<const uint4*>(k_cache + off);
        vv8 = *reinterpret_cast<const uint4*>(v_cache + off);
      }
      *reinterpret_cast<uint4*>(sk + r * L::kLdQkv + c) = kv8;
      *reinterpret_cast<uint4*>(sv + r * L::kLdQkv + c) = vv8;
    }
    __syncthreads();
    if (!warp_active) continue;

    // S = Q_w K^T (16 x 64).
    for (int nt = 0; nt < kTileK / 16; ++nt) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> bk;
        wmma::load_matrix_sync(a, sq + (warp * kRowsPerWarp) * L::kLdQkv + kk * 16, L::kLdQkv);
        wmma::load_matrix_sync(bk, sk + (nt * 16) * L::kLdQkv + kk * 16, L::kLdQkv);
        wmma::mma_sync(acc, a, bk, acc);
      }
      wmma::store_matrix_sync(ss + nt * 16, acc, L::kLdS, wmma::mem_row_major);
    }
    __syncwarp();

    // Online softmax over this tile for the lane pair's row.
    float sc[kTileK / 2];
    float tile_max = -FLT_MAX;
#pragma unroll
    for (int j = 0; j < kTileK / 2; ++j) {
      const int key = half * (kTileK / 2) + j;
      const int64_t kpos = kt + key;
      const bool ok = row_valid && kpos <= qpos && kpos >= row_lo && kpos < kv_end;
      sc[j] = ok ? ss[row * L::kLdS + key] : -FLT_MAX;
      tile_max = fmaxf(tile_max, sc[j]);
    }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    const float new_m = fmaxf(m, tile_max);
    const float alpha = m == -FLT_MAX ? 0.0f : __expf(m - new_m);
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < kTileK / 2; ++j) {
      const float p = sc[j] == -FLT_MAX ? 0.0f : __expf(sc[j] - new_m);
      sum += p;
      sp[row * L::kLdP + half * (kTileK / 2) + j] = __float2bfloat16(p);
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    l = l * alpha + sum;
    m = new_m;
    for (int d = half * (D / 2); d < (half + 1) * (D / 2); ++d) so[row * L::kLdO + d] *= alpha;
    __syncwarp();

    // O_w += P_w V (16 x D).
    for (int dt = 0; dt < D / 16; ++dt) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, so + dt * 16, L::kLdO, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < kTileK / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> bv;
        wmma::load_matrix_sync(a, sp + kk * 16, L::kLdP);
        wmma::load_matrix_sync(bv, sv + (kk * 16) * L::kLdQkv + dt * 16, L::kLdQkv);
        wmma::mma_sync(acc, a, bv, acc);
      }
      wmma::store_matrix_sync(so + dt * 16, acc, L::kLdO, wmma::mem_row_major);
    }
    __syncwarp();
  }
  if (!row_valid) return;
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  float* o = out + (static_cast<int64_t>(q_begin + qi) * num_q_heads + h) * D;
  for (int d = half * (D / 2); d < (half + 1) * (D / 2); ++d) o[d] = so[row * L::kLdO + d] * inv;
}

template <int D>
void launch_flash(float* out, const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                  const __nv_bfloat16* v_cache,
                  const PagedAttentionArgs& b, int64_t num_q_heads, int64_t num_kv_heads, float scale,
                  int64_t sliding_window, cudaStream_t stream) {
  using L = FlashLayout<D>;
  static bool configured = false;  // per process and head dim; the attribute is per function
  if (!configured) {
    CUDA_CHECK(cudaFuncSetAttribute(flash_prefill_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, L::kBytes));
    configured = true;
  }
  // No sequence has more queries than the step's tokens minus one per other
  // sequence; blocks past a sequence's own count exit at once.
  const int64_t max_queries = b.num_tokens - (b.num_seqs - 1);
  const dim3 grid(static_cast<unsigned>(b.num_seqs * num_q_heads),
                  static_cast<unsigned>((max_queries + kTileQ - 1) / kTileQ));
  launch_kernel_smem(flash_prefill_kernel<D>, grid, kThreads, L::kBytes, stream, out, q, q_stride, k_cache, v_cache,
                     b, static_cast<int>(num_q_heads), static_cast<int>(num_kv_heads), scale, sliding_window);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

bool flash_prefill_attention(float* out, const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                             const __nv_bfloat16* v_cache, const PagedAttentionArgs& batch, int64_t num_q_heads,
                             int64_t num_kv_heads, int64_t head_dim, float scale, int64_t sliding_window,
                             cudaStream_t stream) {
  if (batch.num_tokens <= batch.num_seqs) return false;  // decode only, or the count is unknown
  if (q_stride % 4 != 0) return false;                    // float4 loads
  // 16-byte K/V loads (an allocation is 256-byte aligned; a caller's
  // offset view might not be).
  if (reinterpret_cast<uintptr_t>(k_cache) % 16 != 0 || reinterpret_cast<uintptr_t>(v_cache) % 16 != 0) return false;
  if (head_dim == 64) {
    launch_flash<64>(out, q, q_stride, k_cache, v_cache, batch, num_q_heads, num_kv_heads, scale, sliding_window,
                     stream);
    return true;
  }
  if (head_dim == 128) {
    launch_flash<128>(out, q, q_stride, k_cache, v_cache, batch, num_q_heads, num_kv_heads, scale, sliding_window,
                      stream);
    return true;
  }
  return false;
}

}  // namespace llmctl::kernels::cuda
