// Causal attention for steps that carry prefill (or chunked-prefill) tokens,
// on the tensor cores: flash-attention style tiles over the paged KV cache.
// One block of four warps takes the queries of one (sequence, query head)
// tile, the sequences' last query tiles first; each warp owns 16 x kMT of
// them as the rows of kMT mma.m16n8k16 m-tiles (bf16 in, fp32 accumulate;
// mma_bf16.cuh). Per tile of 64 keys the block copies K and V from the bf16
// cache into shared memory with cp.async, the next tile in flight while the
// current one is used. Each warp computes its scores into registers, runs
// the online softmax there (running max and sum per query row, fp32), feeds
// the probabilities back as the A operand of P x V without a trip through
// shared memory, and keeps its output in fp32 accumulator registers until
// the end. Queries are scaled before rounding so the scores need no extra
// pass.
//
// Two widths: kMT 1 (64 queries a block, the scaled Q fragments held in
// registers) for short prompts, where more blocks fill the GPU; kMT 2 (128
// queries a block, Q staged in shared memory and read by ldmatrix, since
// its registers go to the second m-tile's scores and output) for long ones:
// each K and V fragment read from shared memory then feeds two m-tiles'
// mma instead of one, and each K/V tile copied from the cache serves twice
// the queries, as FlashAttention-2 does. kMT 2 is opt-in until it has run
// on a GPU (wide_min_queries below).
//
// Why bf16 operands: the weights already are bf16 and transformers computes
// attention in bf16 for bf16 models; the fp32 softmax state keeps long rows
// accurate. Decode rows go to the grouped decode kernel (decode_attention.cu)
// or the per-query-head one (paged_attention.cu).
#include <cuda_bf16.h>

#include <atomic>
#include <cfloat>
#include <climits>
#include <cstdint>
#include <cstdlib>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/kv_tile.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/mma_bf16.cuh"

namespace llmctl::kernels::cuda {
namespace {

constexpr int kTileK = 64;  // keys per iteration
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;

// The two-m-tile kernel is opt-in until it has been checked and timed on a
// GPU (it was written in a session that had none):
// LLMCTL_FLASH_WIDE_MIN_QUERIES=N runs it for steps whose per-sequence
// query bound is at least N (512 is the planned default: shorter steps have
// too few 128-query blocks to fill the GPU). Read at each launch, so a test
// can switch it; prefill steps are not captured in graphs. The bound is the
// step's tokens less one per other sequence, so many short prompts in one
// step also count as long: time that case before making 512 the default.
std::atomic<int64_t> wide_launches{0};

int64_t wide_min_queries() {
  const char* env = std::getenv("LLMCTL_FLASH_WIDE_MIN_QUERIES");
  if (env == nullptr || *env == '\0') return INT64_MAX;
  char* end = nullptr;
  const long long n = std::strtoll(env, &end, 10);
  return *end == '\0' && n >= 1 ? static_cast<int64_t>(n) : INT64_MAX;
}

// Shared memory for head dim D and kMT m-tiles per warp: two stages of a K
// and a V tile, then (kMT 2) the block's scaled Q rows; rows padded to D + 8
// bf16 so that ldmatrix of 8 rows of 16 bytes hits distinct banks.
template <int D, int kMT>
struct FlashLayout {
  static constexpr int kLd = D + 8;
  static constexpr int kRowsPerWarp = 16 * kMT;
  static constexpr int kTileQ = kWarps * kRowsPerWarp;
  static constexpr int kTileElems = kTileK * kLd;
  static constexpr int kQElems = kMT > 1 ? kTileQ * kLd : 0;
  static constexpr int kBytes = (2 * 2 * kTileElems + kQElems) * 2;
};

// kMT 1: three blocks per SM, as many as the shared memory holds: left to
// itself the compiler took 215 registers at head dim 128, which let two on
// (8 warps per SM, 12.5 % occupancy; ncu put an 8k prefill's attention at
// 4.0 ms per 8B layer on an H100, stalled on dependent instructions with no
// other warp to issue). Capped at 168 it spills a few bytes. kMT 2: two
// blocks, as many as its shared memory holds, and every register they allow.
template <int D, int kMT>
__global__ void __launch_bounds__(kThreads, kMT == 1 ? 3 : 2)
    flash_prefill_kernel(float* out, const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                         const __nv_bfloat16* v_cache, PagedAttentionArgs b, int num_q_heads, int num_kv_heads,
                         float scale, int64_t sliding_window) {
  using L = FlashLayout<D, kMT>;
  constexpr int kRowsPerWarp = L::kRowsPerWarp;
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
  const int tile0 = static_cast<int>(gridDim.y - 1 - blockIdx.y) * L::kTileQ;
  if (tile0 >= q_count) return;  // the whole block: before any barrier
  // Positions are 32-bit (context_len is): 64-bit key arithmetic would cost
  // the registers that let a third block onto each SM.
  const int window = sliding_window > 0 && sliding_window < INT_MAX ? static_cast<int>(sliding_window) : 0;
  const int pos0 = b.context_len[s] - q_count;  // position of the sequence's first query
  const int last = (tile0 + L::kTileQ < q_count ? tile0 + L::kTileQ : q_count) - 1;
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

  // Row i of m-tile mt of this warp is query wrow0 + mt * 16 + i; this lane
  // holds rows grp and grp + 8 of each m-tile.
  const int wrow0 = tile0 + warp * kRowsPerWarp;
  auto window_start = [&](int qpos) { return window > 0 && qpos - window + 1 > 0 ? qpos - window + 1 : 0; };
  const bool warp_active = wrow0 < q_count;
  const bool warp_full = wrow0 + kRowsPerWarp <= q_count;
  // Keys some row of the warp may see, and keys every row sees.
  const int warp_kmax = pos0 + (warp_full ? wrow0 + kRowsPerWarp - 1 : q_count - 1);
  const int warp_kmin = window_start(pos0 + wrow0);
  const int all_from = window_start(pos0 + wrow0 + kRowsPerWarp - 1), all_to = pos0 + wrow0;

  // kMT 1: the scaled query rows as A fragments, one set of four registers
  // per k-step. kMT 2: the block's scaled query rows, staged in shared
  // memory (zero past q_count; visible after the first tile's barrier).
  uint32_t qa[kMT == 1 ? D / 16 : 1][4];
  if constexpr (kMT == 1) {
    const int r0 = wrow0 + grp, r1 = r0 + 8;
    const float* q0 = q + static_cast<int64_t>(q_begin + r0) * q_stride + static_cast<int64_t>(h) * D;
    const float* q1 = q + static_cast<int64_t>(q_begin + r1) * q_stride + static_cast<int64_t>(h) * D;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const int c = kk * 16 + quad * 2;
      float2 x0 = make_float2(0.f, 0.f), x1 = x0, x2 = x0, x3 = x0;
      if (r0 < q_count) {
        x0 = *reinterpret_cast<const float2*>(q0 + c);
        x2 = *reinterpret_cast<const float2*>(q0 + c + 8);
      }
      if (r1 < q_count) {
        x1 = *reinterpret_cast<const float2*>(q1 + c);
        x3 = *reinterpret_cast<const float2*>(q1 + c + 8);
      }
      qa[kk][0] = pack_bf16(x0.x * scale, x0.y * scale);
      qa[kk][1] = pack_bf16(x1.x * scale, x1.y * scale);
      qa[kk][2] = pack_bf16(x2.x * scale, x2.y * scale);
      qa[kk][3] = pack_bf16(x3.x * scale, x3.y * scale);
    }
  } else {
    constexpr int kVecs = D / 4;  // float4 pieces per row
    __nv_bfloat16* sq = tiles + 4 * L::kTileElems;
    for (int i = threadIdx.x; i < L::kTileQ * kVecs; i += kThreads) {
      const int r = i / kVecs, c = (i % kVecs) * 4;
      float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
      if (tile0 + r < q_count) {
        x = *reinterpret_cast<const float4*>(q + static_cast<int64_t>(q_begin + tile0 + r) * q_stride +
                                             static_cast<int64_t>(h) * D + c);
      }
      *reinterpret_cast<uint2*>(sq + r * L::kLd + c) =
          make_uint2(pack_bf16(x.x * scale, x.y * scale), pack_bf16(x.z * scale, x.w * scale));
    }
  }
  // Output: n-tile dt covers dims dt * 8 .. + 7; [0..1] row grp, [2..3] row
  // grp + 8 of the m-tile.
  float o[kMT][D / 8][4];
  float m[kMT][2], l[kMT][2];
  int qpos[kMT][2], lo[kMT][2];
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
    qpos[mt][0] = pos0 + wrow0 + mt * 16 + grp;
    qpos[mt][1] = qpos[mt][0] + 8;
    lo[mt][0] = window_start(qpos[mt][0]);
    lo[mt][1] = window_start(qpos[mt][1]);
  }
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int i = 0; i < D / 8; ++i) o[mt][i][0] = o[mt][i][1] = o[mt][i][2] = o[mt][i][3] = 0.0f;
    m[mt][0] = m[mt][1] = -FLT_MAX;
    l[mt][0] = l[mt][1] = 0.0f;
  }

  for (int t = 0; t < num_tiles; ++t) {
    const int st = t & 1;
    await_kv_tile(t, num_tiles, load_tile);  // tile t in stage st, visible to every warp
    const int kt = kv_begin + t * kTileK;
    if (warp_active && kt <= warp_kmax && kt + kTileK - 1 >= warp_kmin) {
      const __nv_bfloat16* sk = tiles + (2 * st) * L::kTileElems;
      const __nv_bfloat16* sv = sk + L::kTileElems;
      // S = Q K^T: n-tile n holds keys kt + n * 8 + quad * 2 + {0, 1}.
      float sc[kMT][kTileK / 8][4];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
        for (int n = 0; n < kTileK / 8; ++n) sc[mt][n][0] = sc[mt][n][1] = sc[mt][n][2] = sc[mt][n][3] = 0.0f;
      }
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t a[kMT][4];
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
          if constexpr (kMT == 1) {
            a[mt][0] = qa[kk][0], a[mt][1] = qa[kk][1], a[mt][2] = qa[kk][2], a[mt][3] = qa[kk][3];
          } else {
            ldmatrix_x4(a[mt], a_fragment_row(tiles + 4 * L::kTileElems, L::kLd, warp * kRowsPerWarp + mt * 16, kk * 16, lane));
          }
        }
#pragma unroll
        for (int n = 0; n < kTileK / 8; n += 2) {
          uint32_t kb[4];
          ldmatrix_x4(kb, k_fragment_row(sk, L::kLd, n * 8, kk * 16, lane));
#pragma unroll
          for (int mt = 0; mt < kMT; ++mt) {
            mma_16816(sc[mt][n], a[mt][0], a[mt][1], a[mt][2], a[mt][3], kb[0], kb[1]);
            mma_16816(sc[mt][n + 1], a[mt][0], a[mt][1], a[mt][2], a[mt][3], kb[2], kb[3]);
          }
        }
      }
      // Tiles wholly inside every row's window (and before every row's
      // position) need no mask; the diagonal and window edges do.
      const bool masked = !(warp_full && kt >= all_from && kt + kTileK - 1 <= all_to);
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        if (masked) {
          const int qpos0 = qpos[mt][0], qpos1 = qpos[mt][1];
          const int lo0 = lo[mt][0], lo1 = lo[mt][1];
          const bool valid0 = qpos0 < pos0 + q_count, valid1 = qpos1 < pos0 + q_count;
#pragma unroll
          for (int n = 0; n < kTileK / 8; ++n) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              const int key = kt + n * 8 + quad * 2 + e;
              if (!(valid0 && key <= qpos0 && key >= lo0)) sc[mt][n][e] = -FLT_MAX;
              if (!(valid1 && key <= qpos1 && key >= lo1)) sc[mt][n][2 + e] = -FLT_MAX;
            }
          }
        }
        float mx0 = -FLT_MAX, mx1 = -FLT_MAX;
#pragma unroll
        for (int n = 0; n < kTileK / 8; ++n) {
          mx0 = fmaxf(mx0, fmaxf(sc[mt][n][0], sc[mt][n][1]));
          mx1 = fmaxf(mx1, fmaxf(sc[mt][n][2], sc[mt][n][3]));
        }
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        const float mn0 = fmaxf(m[mt][0], mx0), mn1 = fmaxf(m[mt][1], mx1);
        const float corr0 = __expf(m[mt][0] - mn0), corr1 = __expf(m[mt][1] - mn1);
        float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
        for (int n = 0; n < kTileK / 8; ++n) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            // A masked score is -FLT_MAX: its probability is zero even when
            // the row has seen nothing yet (mn = -FLT_MAX).
            sc[mt][n][e] = sc[mt][n][e] == -FLT_MAX ? 0.0f : __expf(sc[mt][n][e] - mn0);
            sc[mt][n][2 + e] = sc[mt][n][2 + e] == -FLT_MAX ? 0.0f : __expf(sc[mt][n][2 + e] - mn1);
            sum0 += sc[mt][n][e];
            sum1 += sc[mt][n][2 + e];
          }
        }
        sum0 += __shfl_xor_sync(0xffffffffu, sum0, 1);
        sum0 += __shfl_xor_sync(0xffffffffu, sum0, 2);
        sum1 += __shfl_xor_sync(0xffffffffu, sum1, 1);
        sum1 += __shfl_xor_sync(0xffffffffu, sum1, 2);
        l[mt][0] = l[mt][0] * corr0 + sum0;
        l[mt][1] = l[mt][1] * corr1 + sum1;
        m[mt][0] = mn0;
        m[mt][1] = mn1;
#pragma unroll
        for (int i = 0; i < D / 8; ++i) {
          o[mt][i][0] *= corr0;
          o[mt][i][1] *= corr0;
          o[mt][i][2] *= corr1;
          o[mt][i][3] *= corr1;
        }
      }
      // O += P V, 16 keys per k-step; P's A fragment is two n-tiles of S.
#pragma unroll
      for (int kk = 0; kk < kTileK / 16; ++kk) {
        uint32_t pa[kMT][4];
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
          pa[mt][0] = pack_bf16(sc[mt][2 * kk][0], sc[mt][2 * kk][1]);
          pa[mt][1] = pack_bf16(sc[mt][2 * kk][2], sc[mt][2 * kk][3]);
          pa[mt][2] = pack_bf16(sc[mt][2 * kk + 1][0], sc[mt][2 * kk + 1][1]);
          pa[mt][3] = pack_bf16(sc[mt][2 * kk + 1][2], sc[mt][2 * kk + 1][3]);
        }
#pragma unroll
        for (int dt = 0; dt < D / 16; ++dt) {
          uint32_t vb[4];
          ldmatrix_x4_trans(vb, a_fragment_row(sv, L::kLd, kk * 16, dt * 16, lane));
#pragma unroll
          for (int mt = 0; mt < kMT; ++mt) {
            mma_16816(o[mt][2 * dt], pa[mt][0], pa[mt][1], pa[mt][2], pa[mt][3], vb[0], vb[1]);
            mma_16816(o[mt][2 * dt + 1], pa[mt][0], pa[mt][1], pa[mt][2], pa[mt][3], vb[2], vb[3]);
          }
        }
      }
    }
    __syncthreads();  // stage st free for tile t + 2
  }

#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
    const int r0 = wrow0 + mt * 16 + grp, r1 = r0 + 8;
    const float inv0 = l[mt][0] > 0.0f ? 1.0f / l[mt][0] : 0.0f, inv1 = l[mt][1] > 0.0f ? 1.0f / l[mt][1] : 0.0f;
    if (r0 < q_count) {
      float* dst = out + (static_cast<int64_t>(q_begin + r0) * num_q_heads + h) * D + quad * 2;
#pragma unroll
      for (int i = 0; i < D / 8; ++i) {
        *reinterpret_cast<float2*>(dst + i * 8) = make_float2(o[mt][i][0] * inv0, o[mt][i][1] * inv0);
      }
    }
    if (r1 < q_count) {
      float* dst = out + (static_cast<int64_t>(q_begin + r1) * num_q_heads + h) * D + quad * 2;
#pragma unroll
      for (int i = 0; i < D / 8; ++i) {
        *reinterpret_cast<float2*>(dst + i * 8) = make_float2(o[mt][i][2] * inv1, o[mt][i][3] * inv1);
      }
    }
  }
}

template <int D, int kMT>
void launch_flash_tiles(float* out, const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                  const __nv_bfloat16* v_cache, const PagedAttentionArgs& b, int64_t num_q_heads,
                  int64_t num_kv_heads, float scale, int64_t sliding_window, int64_t max_queries,
                  cudaStream_t stream) {
  using L = FlashLayout<D, kMT>;
  allow_dynamic_smem<flash_prefill_kernel<D, kMT>>(L::kBytes);
  const dim3 grid(static_cast<unsigned>(b.num_seqs * num_q_heads),
                  static_cast<unsigned>((max_queries + L::kTileQ - 1) / L::kTileQ));
  launch_kernel_smem(flash_prefill_kernel<D, kMT>, grid, kThreads, L::kBytes, stream, out, q, q_stride, k_cache,
                     v_cache, b, static_cast<int>(num_q_heads), static_cast<int>(num_kv_heads), scale,
                     sliding_window);
  CUDA_CHECK_LAUNCH();
}

template <int D>
void launch_flash(float* out, const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                  const __nv_bfloat16* v_cache, const PagedAttentionArgs& b, int64_t num_q_heads,
                  int64_t num_kv_heads, float scale, int64_t sliding_window, cudaStream_t stream) {
  // No sequence has more queries than the step's tokens minus one per other
  // sequence; blocks past a sequence's own count exit at once.
  const int64_t max_queries = b.num_tokens - (b.num_seqs - 1);
  // The wide kernel stages Q with 16-byte loads.
  const bool q_aligned = q_stride % 4 == 0 && reinterpret_cast<uintptr_t>(q) % 16 == 0;
  if (max_queries >= wide_min_queries() && q_aligned) {
    launch_flash_tiles<D, 2>(out, q, q_stride, k_cache, v_cache, b, num_q_heads, num_kv_heads, scale, sliding_window,
                       max_queries, stream);
    wide_launches.fetch_add(1, std::memory_order_relaxed);
  } else {
    launch_flash_tiles<D, 1>(out, q, q_stride, k_cache, v_cache, b, num_q_heads, num_kv_heads, scale, sliding_window,
                       max_queries, stream);
  }
}

}  // namespace

int64_t flash_prefill_wide_launches() { return wide_launches.load(std::memory_order_relaxed); }

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
