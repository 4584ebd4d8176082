// The CUDA backend's op entries, one per .cu file in this folder. Each
// validates its shapes (aborting through CUDA_REQUIRE on a broken contract),
// then launches on `stream`; none synchronises. Pointers are device memory;
// shapes and semantics are those of the same-named kernels::Backend op
// (kernels/kernels.h). This header is plain C++17 so nvcc compiles it.
#pragma once

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"

namespace llmctl::kernels::cuda {

// The table is bf16 (the backend's weight dtype).
void embedding(float* out, const int32_t* ids, const __nv_bfloat16* table, int64_t num_tokens, int64_t hidden,
               cudaStream_t stream);

void rms_norm(float* out, const float* x, const float* weight, int64_t rows, int64_t n, float eps,
              cudaStream_t stream);

// In place, per head within rows of `stride` floats (see Backend::rms_norm_heads).
void rms_norm_heads(float* x, int64_t stride, const float* weight, int64_t num_tokens, int64_t num_heads,
                    int64_t head_dim, float eps, cudaStream_t stream);

void add_rms_norm(float* out, float* residual, const float* x, const float* weight, int64_t rows, int64_t n,
                  float eps, cudaStream_t stream);

// dst[i] = bf16(src[i]), round to nearest even.
void convert_to_bf16(__nv_bfloat16* dst, const float* src, int64_t count, cudaStream_t stream);
void convert_f16_to_bf16(__nv_bfloat16* dst, const __half* src, int64_t count, cudaStream_t stream);

// The most tokens one launch of the own GEMV kernel takes (gemv_bf16 loops
// over more); which calls linear() gives it is linear_takes_gemv.
inline constexpr int64_t kGemvMaxTokens = 8;

// linear() with the GEMV kernel for any T (x read in fp32).
void gemv_bf16(float* out, const float* x, const __nv_bfloat16* w, const float* bias, int64_t num_tokens,
               int64_t out_features, int64_t in_features, cudaStream_t stream);

class LtPlanCache;  // linear.cu: cuBLASLt descriptors and algorithm per shape

// What linear() keeps between calls: the cuBLASLt handle and workspace, x
// rounded to bf16 for the cuBLASLt path (grown on demand, stream-ordered),
// and the plans already chosen per shape. Owned by the backend, used by its
// one thread; release_linear_scratch() frees what linear() added.
struct LinearScratch {
  cublasLtHandle_t lt = nullptr;
  void* workspace = nullptr;
  std::size_t workspace_bytes = 0;
  __nv_bfloat16* x_bf16 = nullptr;
  std::size_t x_bf16_count = 0;
  LtPlanCache* plans = nullptr;
};

void release_linear_scratch(LinearScratch& scratch);

// out[T, N] = x[T, K] * w[N, K]^T (+ bias[N]); w bf16, the rest fp32.
void linear(float* out, const float* x, const __nv_bfloat16* w, const float* bias, int64_t num_tokens,
            int64_t out_features, int64_t in_features, LinearScratch& scratch, cudaStream_t stream);

// Whether linear() sends this shape to the own GEMV instead of cuBLASLt.
bool linear_takes_gemv(int64_t num_tokens, int64_t out_features, int64_t in_features);

// The cuBLASLt half of linear() for callers that keep an activation in bf16
// (gated_mlp): x_to_bf16 rounds fp32 x into the scratch buffer (valid until
// the next call that uses the scratch); lt_ready plans the shape (cached)
// and says whether cuBLASLt has an algorithm for it; linear_lt runs a ready
// shape, out[T, N] in bf16 (out_bf16) or fp32, accumulating in fp32.
const __nv_bfloat16* linear_x_to_bf16(const float* x, int64_t count, LinearScratch& scratch, cudaStream_t stream);
bool linear_lt_ready(int64_t num_tokens, int64_t out_features, int64_t in_features, bool out_bf16,
                     LinearScratch& scratch);
void linear_lt(void* out, bool out_bf16, const __nv_bfloat16* x, const __nv_bfloat16* w, int64_t num_tokens,
               int64_t out_features, int64_t in_features, LinearScratch& scratch, cudaStream_t stream);

// Backend::gated_mlp: down(silu(gate) * up) of x. Where both GEMMs go
// through cuBLASLt, gate_up and the activation stay bf16 (in the first
// halves of the fp32 buffers), as transformers keeps them for a bf16 model:
// half the bytes of the [T, 2F] and [T, F] round trips, and the activation
// needs no conversion before the down GEMM. Otherwise (the GEMV reach) the
// three fp32 ops.
void gated_mlp(float* out, const float* x, const __nv_bfloat16* w_gate_up, const __nv_bfloat16* w_down,
               float* gate_up, float* act, int64_t num_tokens, int64_t hidden, int64_t ff, LinearScratch& scratch,
               cudaStream_t stream);

void rope(float* q, int64_t q_stride, float* k, int64_t k_stride, const int32_t* positions, const float* inv_freq,
          int64_t num_tokens, int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim, cudaStream_t stream);

void silu_and_mul(float* out, const float* gate_up, int64_t num_tokens, int64_t width, cudaStream_t stream);
// The same on bf16 gate_up, computed in fp32 and rounded once into bf16 out.
void silu_and_mul_bf16(__nv_bfloat16* out, const __nv_bfloat16* gate_up, int64_t num_tokens, int64_t width,
                       cudaStream_t stream);

// The KV cache is bf16 here (kernels::KvDtype::kBF16): store_kv rounds the
// fp32 k/v rows to nearest even, and every attention path reads bf16.
void store_kv(__nv_bfloat16* k_cache, __nv_bfloat16* v_cache, const float* k, int64_t k_stride, const float* v,
              int64_t v_stride, const int32_t* slot_mapping, int64_t num_tokens, int64_t num_kv_heads,
              int64_t head_dim, cudaStream_t stream);

// The AttentionBatch fields, spelled out so this header needs no kernels.h.
struct PagedAttentionArgs {
  int32_t num_seqs = 0;
  const int32_t* query_start = nullptr;
  const int32_t* context_len = nullptr;
  const int32_t* block_tables = nullptr;
  int32_t max_blocks_per_seq = 0;
  int32_t block_size = 0;
  int64_t num_tokens = 0;
  int32_t num_decode_seqs = 0;
};

// Split-decode partials and per-(sequence, head) counters, grown on demand
// (stream-ordered); the counters are zero between calls. Owned by the
// backend, used by its one thread.
struct AttentionScratch {
  float* partials = nullptr;
  std::size_t partial_floats = 0;
  int* counters = nullptr;
  std::size_t num_counters = 0;
};

void paged_attention(float* out, const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                     const __nv_bfloat16* v_cache, const PagedAttentionArgs& batch, int64_t num_q_heads,
                     int64_t num_kv_heads, int64_t head_dim, float scale, int64_t sliding_window,
                     AttentionScratch& scratch, cudaStream_t stream);

// The tensor-core path of paged_attention for steps with prefill tokens
// (flash_prefill.cu); false when it does not apply (decode-only step, token
// count unknown, head dim other than 64 or 128).
bool flash_prefill_attention(float* out, const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                             const __nv_bfloat16* v_cache, const PagedAttentionArgs& batch, int64_t num_q_heads,
                             int64_t num_kv_heads, int64_t head_dim, float scale, int64_t sliding_window,
                             cudaStream_t stream);
// Launches of flash prefill's two-m-tile kernel so far in this process, so a
// test can tell that the opt-in path ran (it falls back silently otherwise).
int64_t flash_prefill_wide_launches();

// The KV-head-grouped path of paged_attention for decode-only steps
// (decode_attention.cu), splitting keys over blocks in `scratch` when the
// batch is small; false when it does not apply (prefill tokens, count
// unknown, QH / KV above 8, head dim above 128).
bool decode_gqa_attention(float* out, const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                          const __nv_bfloat16* v_cache, const PagedAttentionArgs& batch, int64_t num_q_heads,
                          int64_t num_kv_heads, int64_t head_dim, float scale, int64_t sliding_window,
                          AttentionScratch& scratch, cudaStream_t stream);

// ids[r] = first index of the maximum of logits[r, :] (argmax_rows.cu).
void argmax_rows(int32_t* ids, const float* logits, int64_t rows, int64_t vocab, cudaStream_t stream);

// One token per row drawn from logits (penalties applied in place) as
// Backend::sample_rows specifies (sample_rows.cu).
void sample_rows(int32_t* ids, float* logits, const SamplingRows& rows, cudaStream_t stream);

// The sharded greedy pick (argmax_shards.cu; kernels.h has the contract):
// pairs [rows, 2] of (maximum, index_base + column as int32 bits) over each
// row's first `valid` columns, then ids from the ranks' gathered pairs.
void argmax_with_value(float* pairs, const float* logits, int64_t rows, int64_t row_stride, int64_t valid,
                       int64_t index_base, cudaStream_t stream);
void merge_argmax(int32_t* ids, const float* pairs, int64_t num_shards, int64_t rows, cudaStream_t stream);

void gather_rows(float* out, const float* x, const int32_t* indices, int64_t num_rows, int64_t width,
                 cudaStream_t stream);

}  // namespace llmctl::kernels::cuda
