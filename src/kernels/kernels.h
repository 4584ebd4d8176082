// The op interface every compute backend implements: the handful of ops a
// Llama-family decoder needs, over raw device pointers. The CPU backend
// (kernels/cpu) computes in fp32 with OpenBLAS and threads; the CUDA backend
// implements the same class. Shapes are written row-major, outermost first;
// T = tokens in the step, H = hidden size, V = vocabulary, F = MLP width.
//
// Thread safety: a Backend is used by one thread at a time (the engine thread
// that owns the ModelRunner); ops may use internal worker threads.
// Failure: ops trust their arguments (callers validate shapes at load time);
// memory allocation failure is reported by allocate().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "common/status.h"

namespace llmctl::kernels {

class Backend;

// How a backend stores the weights linear() and embedding() read (kF32 or
// kBF16), and the element types upload_weight() takes from a checkpoint (all
// three). Activations, norms and biases stay fp32 in every backend; the KV
// cache is in kv_dtype() (KvDtype below).
enum class WeightDtype { kF32, kBF16, kF16 };

constexpr std::size_t weight_dtype_size_bytes(WeightDtype dtype) { return dtype == WeightDtype::kF32 ? 4 : 2; }

// Memory owned by a backend; freed when destroyed. Not copyable.
class DeviceBuffer {
 public:
  DeviceBuffer(Backend* backend, void* data, std::size_t size_bytes)
      : backend_(backend), data_(data), size_bytes_(size_bytes) {}
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer();

  void* data() const { return data_; }
  float* f32() const { return static_cast<float*>(data_); }
  int32_t* i32() const { return static_cast<int32_t*>(data_); }
  std::size_t size_bytes() const { return size_bytes_; }

 private:
  Backend* backend_;
  void* data_;
  std::size_t size_bytes_;
};

// How a backend stores the paged KV cache: kF32 on the CPU (the exact
// reference), kBF16 on CUDA, where a batched decode step reads more KV bytes
// than weight bytes, so half the bytes is close to half the attention time
// and twice the tokens in the same memory.
enum class KvDtype { kF32, kBF16 };

constexpr std::size_t kv_dtype_size_bytes(KvDtype dtype) { return dtype == KvDtype::kBF16 ? 2 : 4; }

// Describes the sequences of one step for paged attention. Sequence s owns
// query tokens [query_start[s], query_start[s+1]) of the step; they are the
// last (query_start[s+1] - query_start[s]) of its context_len[s] tokens, whose
// keys and values are already in the cache (store_kv runs first). Token j of a
// sequence lives in block block_tables[s * max_blocks_per_seq + j / block_size]
// at offset j % block_size. Prefill, chunked prefill and decode are the same
// op. All arrays are device memory.
struct AttentionBatch {
  int32_t num_seqs = 0;
  const int32_t* query_start = nullptr;   // [num_seqs + 1]
  const int32_t* context_len = nullptr;   // [num_seqs]
  const int32_t* block_tables = nullptr;  // [num_seqs, max_blocks_per_seq]
  int32_t max_blocks_per_seq = 0;
  int32_t block_size = 0;
  // Query tokens in the step (query_start[num_seqs]), when the caller knows
  // it on the host; 0: unknown. Lets a backend pick a prefill kernel.
  int64_t num_tokens = 0;
  // How many leading sequences have exactly one query token (decode rows,
  // which the scheduler puts first), when the caller knows it; 0: unknown
  // or none. Lets a backend run a mixed step's decode rows on its decode
  // kernel and the rest on its prefill kernel.
  int32_t num_decode_seqs = 0;
};

// Per-row settings of Backend::sample_rows (an array in device memory).
struct SamplingRowParams {
  double uniform = 0;      // in [0, 1): the row's draw, from its sequence's seeded generator
  double temperature = 0;  // <= 0: greedy (the first maximum of the processed logits)
  double top_p = 1;
  double min_p = 0;
  double repetition_penalty = 1;
  double presence_penalty = 0;
  double frequency_penalty = 0;
  int32_t top_k = 0;  // <= 0 or >= vocab: every token
  // The row's entries [seen_begin, seen_end) of SamplingRows::seen_tokens and
  // [banned_begin, banned_end) of SamplingRows::banned_tokens.
  int32_t seen_begin = 0, seen_end = 0;
  int32_t banned_begin = 0, banned_end = 0;
};

// The rows of one sample_rows call; every pointer is device memory.
struct SamplingRows {
  int64_t rows = 0;
  int64_t vocab = 0;
  const SamplingRowParams* params = nullptr;  // [rows]
  // Each row's distinct prompt and output tokens, with how often each occurs
  // in the output (0: prompt only), for the penalties.
  const int32_t* seen_tokens = nullptr;
  const int32_t* seen_output_counts = nullptr;
  // Tokens that may not be drawn now (eos and stop ids under min_tokens).
  const int32_t* banned_tokens = nullptr;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;

  // Zero-filled device memory; RESOURCE errors as UNAVAILABLE.
  virtual Result<std::unique_ptr<DeviceBuffer>> allocate(std::size_t size_bytes) = 0;
  // Frees what allocate() returned; called by ~DeviceBuffer. The default
  // frees host memory from the CPU backend's aligned allocator.
  virtual void deallocate(void* data);
  // src is read before the call returns; the copy may still be queued
  // (ordered before later work on the backend).
  virtual void copy_to_device(void* dst, const void* src, std::size_t size_bytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, std::size_t size_bytes) = 0;
  // Waits for queued work (no-op on the CPU).
  virtual void synchronize() = 0;

  // The device's memory as the driver reports it now; zeros for host
  // memory, where the KV cache is sized by bytes instead.
  struct MemoryInfo {
    uint64_t total_bytes = 0;
    uint64_t free_bytes = 0;
    // Freed buffers the backend's allocator still held, released by this
    // call: after a step, about what that step needed beyond its persistent
    // buffers (the KV sizing subtracts it as the activations' peak).
    uint64_t cached_bytes = 0;
  };
  virtual MemoryInfo memory_info() { return {}; }
  // Changes whenever an op moved a scratch buffer it keeps between calls to
  // a new address (growing it for a larger shape): a CUDA graph captured
  // before then reads the old, freed one and must be captured again.
  virtual uint64_t scratch_epoch() const { return 0; }

  // The dtype of linear() weights and the embedding table (kF32 unless a
  // backend overrides it). A weight buffer holds count *
  // weight_dtype_size_bytes(weight_dtype()) bytes and is filled by
  // upload_weight, which converts `count` host elements of src_dtype (any
  // alignment, e.g. a view of a mapped checkpoint) to dst in that dtype
  // (round to nearest even for bf16). src is read before the call returns;
  // the device side may still be in flight (later ops on the backend are
  // ordered after it, copy_to_host and synchronize wait for it).
  virtual WeightDtype weight_dtype() const { return WeightDtype::kF32; }
  virtual void upload_weight(void* dst, const void* src, WeightDtype src_dtype, std::size_t count) = 0;
  // upload_weight of fp32 host values.
  void copy_weight_to_device(void* dst, const float* src, std::size_t count) {
    upload_weight(dst, src, WeightDtype::kF32, count);
  }

  // out[T, H] = table[ids[t], :]; table: [V, H] in weight_dtype().
  virtual void embedding(float* out, const int32_t* ids, const void* table, int64_t num_tokens,
                         int64_t hidden) = 0;

  // out[R, N] = x[R, N] / sqrt(mean(x^2) + eps) * weight[N], per row. R rows of
  // N (a per-head norm passes R = T * heads, N = head_dim). out may equal x.
  virtual void rms_norm(float* out, const float* x, const float* weight, int64_t rows, int64_t n,
                        float eps) = 0;

  // In place, per head (Qwen3's q/k norm inside fused qkv rows): for each
  // token t and head h, the head_dim values at x + t * stride + h * head_dim
  // are RMS-normalised and scaled by weight[head_dim]. The default is one
  // rms_norm per token; a device backend does it in one launch.
  virtual void rms_norm_heads(float* x, int64_t stride, const float* weight, int64_t num_tokens, int64_t num_heads,
                              int64_t head_dim, float eps) {
    for (int64_t t = 0; t < num_tokens; ++t) rms_norm(x + t * stride, x + t * stride, weight, num_heads, head_dim, eps);
  }

  // Fused residual add: residual[T, H] += x[T, H]; out[T, H] = rms_norm(residual).
  virtual void add_rms_norm(float* out, float* residual, const float* x, const float* weight,
                            int64_t rows, int64_t n, float eps) = 0;

  // out[T, N] = x[T, K] * w[N, K]^T (+ bias[N] when non-null). Serves the
  // fused qkv projection, o_proj, the MLP and the logits head. w holds
  // weight_dtype() elements (see copy_weight_to_device); x, bias, out fp32.
  virtual void linear(float* out, const float* x, const void* w, const float* bias, int64_t num_tokens,
                      int64_t out_features, int64_t in_features) = 0;

  // Rotary embedding in place, half-split layout (dim i pairs with i + D/2):
  // q: [T, num_q_heads, D] with row stride q_stride floats between tokens,
  // k: [T, num_kv_heads, D] with row stride k_stride; positions: [T];
  // inv_freq: [D/2] (scaling such as llama3 is folded into inv_freq).
  virtual void rope(float* q, int64_t q_stride, float* k, int64_t k_stride, const int32_t* positions,
                    const float* inv_freq, int64_t num_tokens, int64_t num_q_heads, int64_t num_kv_heads,
                    int64_t head_dim) = 0;

  // out[T, F] = silu(gate_up[:, :F]) * gate_up[:, F:]; gate_up: [T, 2F].
  virtual void silu_and_mul(float* out, const float* gate_up, int64_t num_tokens, int64_t width) = 0;

  // A layer's gated MLP: out[T, H] = down(silu(gate) * up), where [gate |
  // up] = x[T, H] * w_gate_up[2F, H]^T and down multiplies by w_down[H, F]^T
  // (weights in weight_dtype()). gate_up [T, 2F] and act [T, F] are the
  // caller's fp32 workspace; what they hold afterwards is unspecified (a
  // device backend may keep the intermediates in bf16 there, as transformers
  // does for a bf16 model). The default is linear, silu_and_mul, linear.
  virtual void gated_mlp(float* out, const float* x, const void* w_gate_up, const void* w_down, float* gate_up,
                         float* act, int64_t num_tokens, int64_t hidden, int64_t ff) {
    linear(gate_up, x, w_gate_up, nullptr, num_tokens, 2 * ff, hidden);
    silu_and_mul(act, gate_up, num_tokens, ff);
    linear(out, act, w_down, nullptr, num_tokens, hidden, ff);
  }

  // The element type of the KV cache store_kv writes and paged_attention
  // reads; a cache buffer holds kv_dtype_size_bytes(kv_dtype()) per element.
  virtual KvDtype kv_dtype() const { return KvDtype::kF32; }

  // Writes k/v of the step's tokens into the paged cache, converted to
  // kv_dtype() (round to nearest even for bf16). k, v: [T, KV, D] fp32 with
  // row strides k_stride / v_stride; caches: [num_blocks, block_size, KV, D];
  // slot_mapping[t] = block * block_size + offset (negative: skip the token).
  virtual void store_kv(void* k_cache, void* v_cache, const float* k, int64_t k_stride, const float* v,
                        int64_t v_stride, const int32_t* slot_mapping, int64_t num_tokens,
                        int64_t num_kv_heads, int64_t head_dim) = 0;

  // Causal attention of the step's queries over the paged cache (see
  // AttentionBatch; caches in kv_dtype()). q: [T, QH, D] with row stride
  // q_stride; out: [T, QH, D]; query head h reads kv head h / (QH / KV).
  // sliding_window > 0: a query at position p sees keys at positions
  // > p - sliding_window only.
  virtual void paged_attention(float* out, const float* q, int64_t q_stride, const void* k_cache,
                               const void* v_cache, const AttentionBatch& batch, int64_t num_q_heads,
                               int64_t num_kv_heads, int64_t head_dim, float scale,
                               int64_t sliding_window) = 0;

  // out[S, H] = x[indices[s], :] (picks the rows that need logits).
  virtual void gather_rows(float* out, const float* x, const int32_t* indices, int64_t num_rows,
                           int64_t width) = 0;

  // ids[r] = the first index of the maximum of logits[r, :] (greedy
  // sampling's choice), so a greedy row never leaves the device whole. NaN
  // never wins. The default runs on the host (CPU backend memory).
  virtual void argmax_rows(int32_t* ids, const float* logits, int64_t rows, int64_t vocab) {
    argmax_rows_on_host(ids, logits, rows, vocab);
  }
  static void argmax_rows_on_host(int32_t* ids, const float* logits, int64_t rows, int64_t vocab) {
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = logits + r * vocab;
      int64_t best = 0;
      for (int64_t i = 1; i < vocab; ++i) {
        if (row[i] > row[best] || (row[best] != row[best] && row[i] == row[i])) best = i;
      }
      ids[r] = static_cast<int32_t>(best);
    }
  }

  // ids[r] = one token drawn from row r of logits[rows, vocab], so that only
  // ids leave the device. Per row (in place, as Sampler::process_logits):
  // repetition penalty on every seen token (x > 0 ? x / rp : x * rp, rp in
  // fp32), presence / frequency penalty on tokens the output holds c > 0
  // times (x - (frequency * c + presence) in fp64), banned tokens -inf.
  // Temperature <= 0: the first maximum. Otherwise with w = exp((x - max) /
  // T) in fp64, the candidates are the non-NaN tokens with x >= the largest
  // of: the top_k-th largest logit; the largest logit L whose tokens with
  // x >= L hold at least top_p of the (top_k) mass; and, among those, tokens
  // with w >= min_p. Ties at a cut-off all stay. The pick is the first
  // candidate in id order whose cumulative w exceeds uniform * (their total
  // w). That is the host Sampler's distribution (which walks by probability
  // instead, so one uniform may land on another token); every sum is fp64,
  // so the CPU and CUDA twins pick alike unless a boundary is within
  // rounding. The default runs on the host (CPU backend memory).
  virtual void sample_rows(int32_t* ids, float* logits, const SamplingRows& rows) {
    sample_rows_on_host(ids, logits, rows);
  }
  static void sample_rows_on_host(int32_t* ids, float* logits, const SamplingRows& rows);

  // Greedy over a vocabulary split across tensor-parallel ranks, so no row
  // is ever joined: each rank takes argmax_with_value of its slice, the
  // ranks all_gather the pairs, and merge_argmax picks; the id equals
  // argmax_rows over the joined row. logits: [rows, row_stride], of which
  // the first `valid` columns are real vocabulary (padding never wins);
  // pairs: [rows, 2] = (the first maximum, index_base + its column), the
  // index an int32's bits in a float, so all_gather carries it unchanged.
  // NaN never wins; a slice without a number gives (NaN, -1).
  virtual void argmax_with_value(float* pairs, const float* logits, int64_t rows, int64_t row_stride, int64_t valid,
                                 int64_t index_base) {
    argmax_with_value_on_host(pairs, logits, rows, row_stride, valid, index_base);
  }
  // ids[r] = the index of the best pair of row r among pairs [num_shards,
  // rows, 2] (the larger value; on ties the lower index); 0 when every
  // shard's value is NaN, as argmax_rows answers for an all-NaN row.
  virtual void merge_argmax(int32_t* ids, const float* pairs, int64_t num_shards, int64_t rows) {
    merge_argmax_on_host(ids, pairs, num_shards, rows);
  }
  // The host twins (kernels/cpu/argmax_shards.cpp).
  static void argmax_with_value_on_host(float* pairs, const float* logits, int64_t rows, int64_t row_stride,
                                        int64_t valid, int64_t index_base);
  static void merge_argmax_on_host(int32_t* ids, const float* pairs, int64_t num_shards, int64_t rows);
};

// The CPU backend (always built). num_threads <= 0: hardware concurrency.
std::unique_ptr<Backend> make_cpu_backend(int num_threads = 0);

}  // namespace llmctl::kernels
