#include "runtime/model/decoder_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "common/logging.h"
#include "runtime/dist/communicator.h"
#include "runtime/model/rope_frequencies.h"

namespace llmctl::model {

Result<std::unique_ptr<kernels::DeviceBuffer>> DecoderModel::upload(const std::vector<const Weight*>& parts) {
  std::size_t total = 0;
  for (const Weight* w : parts) total += w->num_elements();
  ASSIGN_OR_RETURN(auto buf, backend_->allocate(total * sizeof(float)));
  std::size_t offset = 0;
  for (const Weight* w : parts) {
    const std::size_t n = w->num_elements();
    if (w->dtype == DType::kF32) {
      backend_->copy_to_device(buf->f32() + offset, w->data(), n * sizeof(float));
    } else {  // norms and biases: small, converted here
      const std::vector<float> values = w->to_f32();
      backend_->copy_to_device(buf->f32() + offset, values.data(), n * sizeof(float));
    }
    offset += n;
  }
  return buf;
}

Result<std::unique_ptr<kernels::DeviceBuffer>> DecoderModel::upload_linear(const std::vector<const Weight*>& parts,
                                                                           std::size_t zero_elements) {
  const std::size_t element = kernels::weight_dtype_size_bytes(backend_->weight_dtype());
  std::size_t total = zero_elements;
  for (const Weight* w : parts) total += w->num_elements();
  ASSIGN_OR_RETURN(auto buf, backend_->allocate(total * element));  // zero-filled: the trailing elements stay 0
  std::size_t offset = 0;
  for (const Weight* w : parts) {
    const std::size_t n = w->num_elements();
    backend_->upload_weight(static_cast<char*>(buf->data()) + offset * element, w->data(), weight_dtype_of(w->dtype),
                            n);
    offset += n;
  }
  return buf;
}

Result<std::unique_ptr<DecoderModel>> DecoderModel::create(const ModelConfig& config, const ModelWeights& weights,
                                                           kernels::Backend* backend, dist::Communicator* comm) {
  ShardLayout layout = ShardLayout::whole(config);
  if (comm != nullptr && comm->world_size() > 1) {
    ASSIGN_OR_RETURN(layout, ShardLayout::make(config, comm->rank(), comm->world_size()));
  } else {
    comm = nullptr;
  }
  std::unique_ptr<DecoderModel> m(new DecoderModel(config, backend, comm, layout));
  auto get = [&](const std::string& name) -> Result<const Weight*> {
    const Weight* w = weights.find(name);
    if (w == nullptr) return Status::invalid_argument(name + ": missing from the loaded weights");
    return w;
  };
  const auto started = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(const Weight* embed, get("model.embed_tokens.weight"));
  // Sharded: one zero row past the slice, what ids held by other ranks look up.
  ASSIGN_OR_RETURN(m->embed_,
                   m->upload_linear({embed}, layout.sharded() ? static_cast<std::size_t>(config.hidden_size) : 0));
  ASSIGN_OR_RETURN(const Weight* norm, get("model.norm.weight"));
  ASSIGN_OR_RETURN(m->final_norm_, m->upload({norm}));
  if (const Weight* head = weights.find("lm_head.weight"); head != nullptr && !config.tie_word_embeddings) {
    ASSIGN_OR_RETURN(m->lm_head_, m->upload_linear({head}));
    m->lm_head_ptr_ = m->lm_head_->data();
  } else {
    // Tied: the table is in the weight dtype the logits GEMM reads, so the
    // head is its first vocab_per_rank rows (the zero row is never read).
    m->lm_head_ptr_ = m->embed_->data();
  }
  const std::vector<float> inv_freq = rope_inv_freq(config);
  ASSIGN_OR_RETURN(m->inv_freq_, backend->allocate(inv_freq.size() * sizeof(float)));
  backend->copy_to_device(m->inv_freq_->data(), inv_freq.data(), inv_freq.size() * sizeof(float));

  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    Layer layer;
    ASSIGN_OR_RETURN(const Weight* in_norm, get(p + "input_layernorm.weight"));
    ASSIGN_OR_RETURN(layer.input_norm, m->upload({in_norm}));
    ASSIGN_OR_RETURN(const Weight* qw, get(p + "self_attn.q_proj.weight"));
    ASSIGN_OR_RETURN(const Weight* kw, get(p + "self_attn.k_proj.weight"));
    ASSIGN_OR_RETURN(const Weight* vw, get(p + "self_attn.v_proj.weight"));
    ASSIGN_OR_RETURN(layer.qkv_w, m->upload_linear({qw, kw, vw}));  // [q + 2kv, H]
    if (config.qkv_bias) {
      ASSIGN_OR_RETURN(const Weight* qb, get(p + "self_attn.q_proj.bias"));
      ASSIGN_OR_RETURN(const Weight* kb, get(p + "self_attn.k_proj.bias"));
      ASSIGN_OR_RETURN(const Weight* vb, get(p + "self_attn.v_proj.bias"));
      ASSIGN_OR_RETURN(layer.qkv_b, m->upload({qb, kb, vb}));
    }
    ASSIGN_OR_RETURN(const Weight* ow, get(p + "self_attn.o_proj.weight"));
    ASSIGN_OR_RETURN(layer.o_w, m->upload_linear({ow}));
    if (config.o_bias && layout.rank == 0) {  // row-parallel: the sum adds it once
      ASSIGN_OR_RETURN(const Weight* ob, get(p + "self_attn.o_proj.bias"));
      ASSIGN_OR_RETURN(layer.o_b, m->upload({ob}));
    }
    if (config.qk_norm) {
      ASSIGN_OR_RETURN(const Weight* qn, get(p + "self_attn.q_norm.weight"));
      ASSIGN_OR_RETURN(const Weight* kn, get(p + "self_attn.k_norm.weight"));
      ASSIGN_OR_RETURN(layer.q_norm, m->upload({qn}));
      ASSIGN_OR_RETURN(layer.k_norm, m->upload({kn}));
    }
    ASSIGN_OR_RETURN(const Weight* post, get(p + "post_attention_layernorm.weight"));
    ASSIGN_OR_RETURN(layer.post_norm, m->upload({post}));
    ASSIGN_OR_RETURN(const Weight* gate, get(p + "mlp.gate_proj.weight"));
    ASSIGN_OR_RETURN(const Weight* up, get(p + "mlp.up_proj.weight"));
    ASSIGN_OR_RETURN(layer.gate_up_w, m->upload_linear({gate, up}));  // [2F, H]
    ASSIGN_OR_RETURN(const Weight* down, get(p + "mlp.down_proj.weight"));
    ASSIGN_OR_RETURN(layer.down_w, m->upload_linear({down}));
    m->layers_.push_back(std::move(layer));
  }
  backend->synchronize();  // the uploads are asynchronous on a device
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const double gb = static_cast<double>(weights.total_bytes()) / 1e9;
  logger("engine")->info("loaded {:.2f} GB of weights to {} in {:.2f} s ({:.1f} GB/s)", gb, backend->name(), seconds,
                         seconds > 0 ? gb / seconds : 0.0);
  return m;
}

int64_t DecoderModel::logits_floats(int64_t num_logits) const {
  return layout_.sharded() ? layout_.world_size * num_logits * layout_.vocab_per_rank : num_logits * config_.vocab_size;
}

void DecoderModel::join_logits(const float* gathered, int64_t num_logits, float* out) const {
  const int64_t vocab = config_.vocab_size, per_rank = layout_.vocab_per_rank;
  for (int r = 0; r < layout_.world_size; ++r) {
    const int64_t begin = r * per_rank;
    const int64_t count = std::max<int64_t>(0, std::min(per_rank, vocab - begin));
    for (int64_t n = 0; n < num_logits; ++n) {
      std::memcpy(out + n * vocab + begin, gathered + (r * num_logits + n) * per_rank,
                  static_cast<std::size_t>(count) * sizeof(float));
    }
  }
}

Status DecoderModel::ensure_workspace(int64_t num_tokens, int64_t num_logits) {
  const ModelConfig& c = config_;
  if (num_tokens > capacity_tokens_) {
    const auto t = static_cast<std::size_t>(num_tokens), f = sizeof(float);
    ASSIGN_OR_RETURN(hidden_, backend_->allocate(t * c.hidden_size * f));
    ASSIGN_OR_RETURN(residual_, backend_->allocate(t * c.hidden_size * f));
    ASSIGN_OR_RETURN(normed_, backend_->allocate(t * c.hidden_size * f));
    ASSIGN_OR_RETURN(qkv_, backend_->allocate(t * (c.q_size() + 2 * c.kv_size()) * f));
    ASSIGN_OR_RETURN(attn_, backend_->allocate(t * c.q_size() * f));
    ASSIGN_OR_RETURN(gate_up_, backend_->allocate(t * 2 * c.intermediate_size * f));
    ASSIGN_OR_RETURN(act_, backend_->allocate(t * c.intermediate_size * f));
    capacity_tokens_ = num_tokens;
    ++workspace_epoch_;
  }
  if (num_logits > capacity_logits_) {
    ASSIGN_OR_RETURN(picked_, backend_->allocate(static_cast<std::size_t>(num_logits) * c.hidden_size * sizeof(float)));
    if (layout_.sharded()) {
      ASSIGN_OR_RETURN(local_logits_, backend_->allocate(static_cast<std::size_t>(num_logits * layout_.vocab_per_rank) *
                                                         sizeof(float)));
      const auto pair_bytes = static_cast<std::size_t>(num_logits) * 2 * sizeof(float);
      ASSIGN_OR_RETURN(local_pairs_, backend_->allocate(pair_bytes));
      ASSIGN_OR_RETURN(gathered_pairs_, backend_->allocate(pair_bytes * static_cast<std::size_t>(layout_.world_size)));
    }
    capacity_logits_ = num_logits;
    ++workspace_epoch_;
  }
  return Status::ok();
}

Status DecoderModel::forward(const ForwardInputs& in, const KvCacheView& kv, float* logits, int32_t* greedy_ids) {
  const ModelConfig& c = config_;
  const int64_t T = in.num_tokens, H = c.hidden_size, D = c.head_dim;
  // This rank's heads and MLP columns (all of them without tensor parallel).
  const int64_t QH = layout_.num_q_heads, KVH = layout_.num_kv_heads, F = layout_.ff_size;
  const int64_t q_size = QH * D, kv_size = KVH * D, qkv_width = q_size + 2 * kv_size;
  const auto eps = static_cast<float>(c.rms_norm_eps);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  if (T <= 0) return Status::ok();
  RETURN_IF_ERROR(ensure_workspace(T, in.num_logits));
  kernels::Backend& b = *backend_;
  kernels::AttentionBatch attention = in.attention;
  attention.num_tokens = T;  // lets the backend pick its prefill or batched-decode kernel

  float* hidden = hidden_->f32();
  float* residual = residual_->f32();
  float* normed = normed_->f32();
  float* qkv = qkv_->f32();

  if (comm_ != nullptr) {
    b.embedding(residual, in.embedding_rows, embed_->data(), T, H);
    RETURN_IF_ERROR(comm_->all_reduce_sum(residual, T * H));
  } else {
    b.embedding(residual, in.token_ids, embed_->data(), T, H);
  }
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const Layer& L = layers_[l];
    if (l == 0) {
      b.rms_norm(normed, residual, L.input_norm->f32(), T, H, eps);
    } else {
      b.add_rms_norm(normed, residual, hidden, L.input_norm->f32(), T, H, eps);
    }
    b.linear(qkv, normed, L.qkv_w->data(), L.qkv_b ? L.qkv_b->f32() : nullptr, T, qkv_width, H);
    float* q = qkv;
    float* k = qkv + q_size;
    float* v = qkv + q_size + kv_size;
    if (c.qk_norm) {
      b.rms_norm_heads(q, qkv_width, L.q_norm->f32(), T, QH, D, eps);
      b.rms_norm_heads(k, qkv_width, L.k_norm->f32(), T, KVH, D, eps);
    }
    b.rope(q, qkv_width, k, qkv_width, in.positions, inv_freq_->f32(), T, QH, KVH, D);
    b.store_kv(kv.k[l], kv.v[l], k, qkv_width, v, qkv_width, in.slot_mapping, T, KVH, D);
    b.paged_attention(attn_->f32(), q, qkv_width, kv.k[l], kv.v[l], attention, QH, KVH, D, scale,
                      c.layer_sliding_window[l]);
    b.linear(hidden, attn_->f32(), L.o_w->data(), L.o_b ? L.o_b->f32() : nullptr, T, H, q_size);
    if (comm_ != nullptr) RETURN_IF_ERROR(comm_->all_reduce_sum(hidden, T * H));
    b.add_rms_norm(normed, residual, hidden, L.post_norm->f32(), T, H, eps);
    b.gated_mlp(hidden, normed, L.gate_up_w->data(), L.down_w->data(), gate_up_->f32(), act_->f32(), T, H, F);
    if (comm_ != nullptr) RETURN_IF_ERROR(comm_->all_reduce_sum(hidden, T * H));
  }
  b.add_rms_norm(normed, residual, hidden, final_norm_->f32(), T, H, eps);
  if (in.num_logits > 0) {
    b.gather_rows(picked_->f32(), normed, in.logits_indices, in.num_logits, H);
    if (comm_ != nullptr) {
      const int64_t per_rank = layout_.vocab_per_rank;
      b.linear(local_logits_->f32(), picked_->f32(), lm_head_ptr_, nullptr, in.num_logits, per_rank, H);
      if (greedy_ids != nullptr) {
        // A few bytes per row cross the group instead of the vocabulary's logits.
        b.argmax_with_value(local_pairs_->f32(), local_logits_->f32(), in.num_logits, per_rank, layout_.vocab_rows,
                            layout_.vocab_begin);
        RETURN_IF_ERROR(comm_->all_gather(local_pairs_->f32(), gathered_pairs_->f32(), in.num_logits * 2));
        b.merge_argmax(greedy_ids, gathered_pairs_->f32(), layout_.world_size, in.num_logits);
      } else {
        RETURN_IF_ERROR(comm_->all_gather(local_logits_->f32(), logits, in.num_logits * per_rank));
      }
    } else {
      b.linear(logits, picked_->f32(), lm_head_ptr_, nullptr, in.num_logits, c.vocab_size, H);
      if (greedy_ids != nullptr) b.argmax_rows(greedy_ids, logits, in.num_logits, c.vocab_size);
    }
  }
  return Status::ok();
}

}  // namespace llmctl::model
