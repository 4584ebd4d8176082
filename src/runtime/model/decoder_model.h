// The forward pass of the Llama family decoder over the kernels interface.
// One class serves all four supported architectures because they differ only
// in switches the config carries: Llama / Mistral (optional attention bias,
// Mistral's sliding window), Qwen2 (q/k/v bias), Qwen3 (per-head RMSNorm on q
// and k before RoPE). A new architecture whose block differs in structure
// gets its own file beside this one.
//
// Weights live in backend memory; q/k/v and gate/up are fused at load so each
// is one GEMM, and the weights linear() and embedding() read are stored in
// the backend's weight_dtype() (bf16 on CUDA; a tied LM head shares the table).
//
// Tensor parallel (a Communicator of world_size > 1): the model holds one
// rank's ShardLayout slices; q/k/v and gate/up are column-parallel, o_proj and
// down_proj row-parallel with one all_reduce_sum each, the embedding and the
// LM head vocab-parallel (lookup of the rank's rows then all_reduce_sum;
// logits slice then all_gather, or for plain-greedy steps only each row's
// (maximum, index) of the slice). Every rank must call forward() with the same
// inputs. Not thread-safe: driven by the ModelRunner's thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "kernels/kernels.h"
#include "runtime/model/model_config.h"
#include "runtime/model/model_weights.h"
#include "runtime/model/shard_layout.h"

namespace llmctl::dist {
class Communicator;
}

namespace llmctl::model {

// Per-layer paged KV cache storage: k[l], v[l] are [num_blocks, block_size,
// KV, D] in the backend's kv_dtype().
struct KvCacheView {
  std::vector<void*> k;
  std::vector<void*> v;
  int32_t block_size = 0;
};

// One step's inputs, already in backend memory (see kernels::AttentionBatch).
struct ForwardInputs {
  int64_t num_tokens = 0;
  const int32_t* token_ids = nullptr;     // [T]
  // [T] rows of this rank's embedding slice (DecoderModel::embedding_row);
  // only read when sharded.
  const int32_t* embedding_rows = nullptr;
  const int32_t* positions = nullptr;     // [T]
  const int32_t* slot_mapping = nullptr;  // [T]
  kernels::AttentionBatch attention;
  int64_t num_logits = 0;
  const int32_t* logits_indices = nullptr;  // [num_logits] rows of T that need logits
};

class DecoderModel {
 public:
  // Uploads `weights` (already checked by load_model_weights) to the backend.
  // With a communicator of world_size > 1 the weights are the slices
  // load_model_weights(..., ShardLayout::make(config, rank, world_size))
  // returned; `comm` must outlive the model.
  static Result<std::unique_ptr<DecoderModel>> create(const ModelConfig& config, const ModelWeights& weights,
                                                      kernels::Backend* backend,
                                                      dist::Communicator* comm = nullptr);

  const ModelConfig& config() const { return config_; }
  const ShardLayout& layout() const { return layout_; }
  // Counts reallocations of forward()'s workspace (it grows for a larger
  // step): a CUDA graph captured before the last one reads freed buffers.
  uint64_t workspace_epoch() const { return workspace_epoch_; }

  // The row of this rank's embedding slice token `id` reads: the zero row
  // past the slice for ids other ranks hold.
  int32_t embedding_row(int32_t id) const {
    const int64_t row = id - layout_.vocab_begin;
    return static_cast<int32_t>(row >= 0 && row < layout_.vocab_rows ? row : layout_.vocab_per_rank);
  }

  // Floats forward() writes to `logits` for num_logits rows: num_logits *
  // vocab, or when sharded world_size * num_logits * vocab_per_rank in rank
  // order, which join_logits() turns into [num_logits, vocab].
  int64_t logits_floats(int64_t num_logits) const;
  // Host: gathered [world_size, num_logits, vocab_per_rank] -> out [num_logits, vocab].
  void join_logits(const float* gathered, int64_t num_logits, float* out) const;

  // Runs the decoder on the step's tokens, writes their K/V into the cache,
  // and writes logits_floats(num_logits) floats to `logits` (backend memory).
  // With greedy_ids (backend memory, [num_logits]) every logits row is plain
  // greedy: each row's first maximum over the whole vocabulary goes there,
  // picked on the device. Sharded, the ranks then exchange only (maximum,
  // index) pairs, so `logits` is not written (it may be null); every rank
  // must pass greedy_ids or none. Fails only when a collective fails (a rank
  // gone or timed out).
  Status forward(const ForwardInputs& in, const KvCacheView& kv, float* logits, int32_t* greedy_ids = nullptr);

 private:
  struct Layer {
    std::unique_ptr<kernels::DeviceBuffer> input_norm, qkv_w, qkv_b, o_w, o_b, q_norm, k_norm, post_norm,
        gate_up_w, down_w;
  };

  DecoderModel(const ModelConfig& config, kernels::Backend* backend, dist::Communicator* comm, ShardLayout layout)
      : config_(config), backend_(backend), comm_(comm), layout_(layout) {}
  Status ensure_workspace(int64_t num_tokens, int64_t num_logits);
  Result<std::unique_ptr<kernels::DeviceBuffer>> upload(const std::vector<const Weight*>& parts);
  // Same, in the backend's weight_dtype(), for the weights linear() and
  // embedding() read, with zero_elements zeros after the parts.
  Result<std::unique_ptr<kernels::DeviceBuffer>> upload_linear(const std::vector<const Weight*>& parts,
                                                               std::size_t zero_elements = 0);

  ModelConfig config_;
  kernels::Backend* backend_;
  dist::Communicator* comm_;  // nullptr or world_size 1: the whole model here
  ShardLayout layout_;
  std::unique_ptr<kernels::DeviceBuffer> embed_, final_norm_, lm_head_, inv_freq_;
  std::vector<Layer> layers_;
  const void* lm_head_ptr_ = nullptr;  // lm_head_ or, when tied, embed_

  // Activations, grown on demand (capacity in tokens).
  int64_t capacity_tokens_ = 0, capacity_logits_ = 0;
  uint64_t workspace_epoch_ = 0;
  std::unique_ptr<kernels::DeviceBuffer> hidden_, residual_, normed_, qkv_, attn_, gate_up_, act_, picked_,
      local_logits_;
  // Sharded greedy: this rank's [num_logits, 2] (maximum, index) pairs, then
  // every rank's, gathered: [world_size, num_logits, 2].
  std::unique_ptr<kernels::DeviceBuffer> local_pairs_, gathered_pairs_;
};

}  // namespace llmctl::model
