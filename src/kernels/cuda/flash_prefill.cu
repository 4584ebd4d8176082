// Causal attention for steps that carry prefill (or chunked-prefill) tokens,
// on the tensor cores: flash-attention style tiles over the paged KV cache.
// One block of four warps takes 64 queries of one (sequence, query head),
// the sequences' last query tiles first;
// each warp owns 16 of them as the rows of mma.m16n8k16 tiles (bf16 in,
// fp32 accumulate; mma_bf16.cuh). Per tile of 64 keys the block copies K
// and V from the bf16 cache into shared memory with cp.async, the next tile
// in flight while the current one is used. Each warp computes its 16 x 64
// scores into registers, runs the online softmax there (running max and
// sum per query row, fp32), feeds the probabilities back as the A operand
// of P x V without a trip through shared memory, and keeps its 16 x D
// output in fp32 accumulator registers until the end. Queries are scaled
// before rounding so the scores need no extra pass.
//
// Why bf16 operands: the weights already are bf16 and transformers computes
// attention in bf16 for bf16 models; the fp32 softmax state keeps long rows
// accurate. Decode rows go to the grouped decode kernel (decode_attention.cu)
// or the per-query-head one (paged_attention.cu).
#include <cuda_bf16.h>

#include <cfloat>
#include <climits>
#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/kv_tile.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/mma_bf16.cuh"

namespace llmctl::kernels::cuda {
namespace {

constexpr int kTileQ = 64;  // queries per block
constexpr int kTileK = 64;  // keys per iteration
constexpr int kWarps = 4;   // 16 queries each
constexpr int kThreads = kWarps * 32;
constexpr int kRowsPerWarp = kTileQ / kWarps;

// Shared memory for head dim D: two stages of a K and a V tile, rows padded
// to D + 8 bf16 so that the 32-bit K fragment loads (8 rows x 4 words) and
// ldmatrix of V (8 rows of 16 bytes) hit distinct banks.
template <int D>
struct FlashLayout {
  static constexpr int kLd = D + 8;
  static constexpr int kTileElems = kTileK * kLd;
  static constexpr int kBytes = 2 * 2 * kTileElems * 2;
};

// Three blocks per SM, as many as the shared memory holds: left to itself
// the compiler took 215 registers at head dim 128, which let two on (8
// warps per SM, 12.5 % occupancy; ncu put an 8k prefill's attention at
// 4.0 ms per 8B layer on an H100, stalled on dependent instructions with no
// other warp to issue). Capped at 168 it spills a few bytes.
template <int D>
__global__ void __launch_bounds__(kThreads, 3) flash_prefill_kernel(float* out, const float* q, int64_t q_stride,
                                                                 const __nv_bfloat16* k_cache,
                                                                 const __nv_bfloat16* v_cache,
                                                                 PagedAttentionArgs b, int num_q_heads,
                                                                 int num_kv_heads, float scale,
                                                                 int64_t sliding_window) {
  using L = FlashLayout<D>;
  pdl_begin();
  extern __shared__ __align__(128) unsigned char smem[];
  auto* tiles = reinterpret_cast<__nv_bfloat16*>(smem);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int grp = lane / 4, quad = lane % 4;  // mma fragment row and column pair

  const int s = static_cast<int>(blockIdx.x) / num_q_heads, h = static_cast<int>(blockIdx.x) % num_q_heads;
  const int kvh = h / (num_q_heads / num_kv_heads);
  const int q_begin = b.query_start[s], q_count = b.query_start[s + 1] - q_begin;
  // The last query tiles see the most keys: they go first (blockIdx.y 0), so
  // the causal triangle's long blocks do not start last and leave a tail.
  const int tile0 = static_cast<int>(gridDim.y - 1 - blockIdx.y) * kTileQ;
  if (tile0 >= q_count) return;  // the whole block: before any barrier
  // Positions are 32-bit (context_len is): 64-bit key arithmetic would cost
  // the registers that let a third block onto each SM.
  const int window = sliding_window > 0 && sliding_window < INT_MAX ? static_cast<int>(sliding_window) : 0;
  const int pos0 = b.context_len[s] - q_count;  // position of the sequence's first query
  const int last = (tile0 + kTileQ < q_count ? tile0 + kTileQ : q_count) - 1;
  const int kv_end = pos0 + last + 1;
  int kv_begin = 0;
  if (window > 0 && pos0 + tile0 - window + 1 > 0) kv_begin = pos0 + tile0 - window + 1;
  const int num_tiles = static_cast<int>((kv_end - kv_begin + kTileK - 1) / kTileK);
  const int32_t* table = b.block_tables + static_cast<int64_t>(s) * b.max_blocks_per_seq;
  const int64_t kv_row = static_cast<int64_t>(num_kv_heads) * D;
  const int64_t kv_offset = static_cast<int64_t>(kvh) * D;

  // Tile t's K and V rows into stage st (kv_tile.cuh); rows at or past
  // kv_end zeroed.
  auto load_tile = [&](int t, int st) {
    __nv_bfloat16* sk = tiles + (2 * st) * L::kTileElems;
    copy_kv_tile<D, kTileK, kThreads, L::kLd>(sk, sk + L::kTileElems, k_cache, v_cache, table, b.block_size,
                                              kv_begin + static_cast<int64_t>(t) * kTileK, kv_end, kv_row, kv_offset);
  };
  if (num_tiles > 0) load_tile(0, 0);

  // This lane's two query rows: r0 = grp and r1 = grp + 8 of the warp's 16.
  const int wrow0 = tile0 + warp * kRowsPerWarp;
  const int r0 = wrow0 + grp, r1 = r0 + 8;
  const bool valid0 = r0 < q_count, valid1 = r1 < q_count;
  const int qpos0 = pos0 + r0, qpos1 = pos0 + r1;
  auto window_start = [&](int qpos) { return window > 0 && qpos - window + 1 > 0 ? qpos - window + 1 : 0; };
  const int lo0 = window_start(qpos0), lo1 = window_start(qpos1);
  const bool warp_active = wrow0 < q_count;
  const bool warp_full = wrow0 + kRowsPerWarp <= q_count;
  // Keys some row of the warp may see, and keys every row sees.
  const int warp_kmax = pos0 + (warp_full ? wrow0 + kRowsPerWarp - 1 : q_count - 1);
  const int warp_kmin = window_start(pos0 + wrow0);
  const int all_from = window_start(pos0 + wrow0 + kRowsPerWarp - 1), all_to = pos0 + wrow0;

  // Scaled query rows as A fragments, one set of four registers per k-step.
  uint32_t qa[D / 16][4];
  {
    const float* q0 = q + static_cast<int64_t>(q_begin + r0) * q_stride + static_cast<int64_t>(h) * D;
    const float* q1 = q + static_cast<int64_t>(q_begin + r1) * q_stride + static_cast<int64_t>(h) * D;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const int c = kk * 16 + quad * 2;
      float2 x0 = make_float2(0.f, 0.f), x1 = x0, x2 = x0, x3 = x0;
      if (valid0) {
        x0 = *reinterpret_cast<const float2*>(q0 + c);
        x2 = *reinterpret_cast<const float2*>(q0 + c + 8);
      }
      if (valid1) {
        x1 = *reinterpret_cast<const float2*>(q1 + c);
        x3 = *reinterpret_cast<const float2*>(q1 + c + 8);
      }
      qa[kk][0] = pack_bf16(x0.x * scale, x0.y * scale);
      qa[kk][1] = pack_bf16(x1.x * scale, x1.y * scale);
      qa[kk][2] = pack_bf16(x2.x * scale, x2.y * scale);
      qa[kk][3] = pack_bf16(x3.x * scale, x3.y * scale);
    }
  }
  // Output: n-tile dt covers dims dt * 8 .. + 7; [0..1] row r0, [2..3] row r1.
  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float m0 = -FLT_MAX, m1 = -FLT_MAX, l0 = 0.0f, l1 = 0.0f;

  for (int t = 0; t < num_tiles; ++t) {
    const int st = t & 1;
    await_kv_tile(t, num_tiles, load_tile);  // tile t in stage st, visible to every warp
    const int kt = kv_begin + t * kTileK;
    if (warp_active && kt <= warp_kmax && kt + kTileK - 1 >= warp_kmin) {
      const __nv_bfloat16* sk = tiles + (2 * st) * L::kTileElems;
      const __nv_bfloat16* sv = sk + L::kTileElems;
      // S = Q K^T: n-tile n holds keys kt + n * 8 + quad * 2 + {0, 1}.
      float sc[kTileK / 8][4];
#pragma unroll
      for (int n = 0; n < kTileK / 8; ++n) sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
        for (int n = 0; n < kTileK / 8; n += 2) {
          uint32_t kb[4];
          ldmatrix_x4(kb, k_fragment_row(sk, L::kLd, n * 8, kk * 16, lane));
          mma_16816(sc[n], qa[kk][0], qa[kk][1], qa[kk][2], qa[kk][3], kb[0], kb[1]);
          mma_16816(sc[n + 1], qa[kk][0], qa[kk][1], qa[kk][2], qa[kk][3], kb[2], kb[3]);
        }
      }
      // Tiles wholly inside every row's window (and before every row's
      // position) need no mask; the diagonal and window edges do.
      const bool masked = !(warp_full && kt >= all_from && kt + kTileK - 1 <= all_to);
      float mx0 = -FLT_MAX, mx1 = -FLT_MAX;
#pragma unroll
      for (int n = 0; n < kTileK / 8; ++n) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int key = kt + n * 8 + quad * 2 + e;
          if (masked && !(valid0 && key <= qpos0 && key >= lo0)) sc[n][e] = -FLT_MAX;
          if (masked && !(valid1 && key <= qpos1 && key >= lo1)) sc[n][2 + e] = -FLT_MAX;
          mx0 = fmaxf(mx0, sc[n][e]);
          mx1 = fmaxf(mx1, sc[n][2 + e]);
        }
      }
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
      const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
      const float corr0 = __expf(m0 - mn0), corr1 = __expf(m1 - mn1);
      float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
      for (int n = 0; n < kTileK / 8; ++n) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          // A masked score is -FLT_MAX: its probability is zero even when
          // the row has seen nothing yet (mn = -FLT_MAX).
          sc[n][e] = sc[n][e] == -FLT_MAX ? 0.0f : __expf(sc[n][e] - mn0);
          sc[n][2 + e] = sc[n][2 + e] == -FLT_MAX ? 0.0f : __expf(sc[n][2 + e] - mn1);
          sum0 += sc[n][e];
          sum1 += sc[n][2 + e];
        }
      }
      sum0 += __shfl_xor_sync(0xffffffffu, sum0, 1);
      sum0 += __shfl_xor_sync(0xffffffffu, sum0, 2);
      sum1 += __shfl_xor_sync(0xffffffffu, sum1, 1);
      sum1 += __shfl_xor_sync(0xffffffffu, sum1, 2);
      l0 = l0 * corr0 + sum0;
      l1 = l1 * corr1 + sum1;
      m0 = mn0;
      m1 = mn1;
#pragma unroll
      for (int i = 0; i < D / 8; ++i) {
        o[i][0] *= corr0;
        o[i][1] *= corr0;
        o[i][2] *= corr1;
        o[i][3] *= corr1;
      }
      // O += P V, 16 keys per k-step; P's A fragment is two n-tiles of S.
#pragma unroll
      for (int kk = 0; kk < kTileK / 16; ++kk) {
        const uint32_t pa0 = pack_bf16(sc[2 * kk][0], sc[2 * kk][1]);
        const uint32_t pa1 = pack_bf16(sc[2 * kk][2], sc[2 * kk][3]);
        const uint32_t pa2 = pack_bf16(sc[2 * kk + 1][0], sc[2 * kk + 1][1]);
        const uint32_t pa3 = pack_bf16(sc[2 * kk + 1][2], sc[2 * kk + 1][3]);
#pragma unroll
        for (int dt = 0; dt < D / 16; ++dt) {
          uint32_t vb[4];
          ldmatrix_x4_trans(vb, sv + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * L::kLd + dt * 16 +
                                    (lane >> 4) * 8);
          mma_16816(o[2 * dt], pa0, pa1, pa2, pa3, vb[0], vb[1]);
          mma_16816(o[2 * dt + 1], pa0, pa1, pa2, pa3, vb[2], vb[3]);
        }
      }
    }
    __syncthreads();  // stage st free for tile t + 2
  }

  const float inv0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, inv1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
  if (valid0) {
    float* dst = out + (static_cast<int64_t>(q_begin + r0) * num_q_heads + h) * D + quad * 2;
#pragma unroll
    for (int i = 0; i < D / 8; ++i) *reinterpret_cast<float2*>(dst + i * 8) = make_float2(o[i][0] * inv0, o[i][1] * inv0);
  }
  if (valid1) {
    float* dst = out + (static_cast<int64_t>(q_begin + r1) * num_q_heads + h) * D + quad * 2;
#pragma unroll
    for (int i = 0; i < D / 8; ++i) *reinterpret_cast<float2*>(dst + i * 8) = make_float2(o[i][2] * inv1, o[i][3] * inv1);
  }
}

template <int D>
void launch_flash(float* out, const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                  const __nv_bfloat16* v_cache,
                  const PagedAttentionArgs& b, int64_t num_q_heads, int64_t num_kv_heads, float scale,
                  int64_t sliding_window, cudaStream_t stream) {
  using L = FlashLayout<D>;
  allow_dynamic_smem<flash_prefill_kernel<D>>(L::kBytes);
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
  if (q_stride % 2 != 0) return false;                    // float2 loads of q
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
