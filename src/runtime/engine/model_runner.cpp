#include "runtime/engine/model_runner.h"

#include <algorithm>

namespace llmctl::engine {

int64_t ModelRunner::kv_block_bytes(const model::ModelConfig& c, int32_t block_size) {
  return 2 * c.num_hidden_layers * static_cast<int64_t>(block_size) * c.kv_size() * static_cast<int64_t>(sizeof(float));
}

Result<std::unique_ptr<ModelRunner>> ModelRunner::create(std::unique_ptr<kernels::Backend> backend,
                                                         const model::ModelConfig& config,
                                                         const model::ModelWeights& weights, int32_t num_blocks,
                                                         int32_t block_size) {
  std::unique_ptr<ModelRunner> r(new ModelRunner());
  r->backend_ = std::move(backend);
  ASSIGN_OR_RETURN(r->model_, model::DecoderModel::create(config, weights, r->backend_.get()));
  const auto layer_bytes = static_cast<std::size_t>(num_blocks) * block_size * config.kv_size() * sizeof(float);
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    ASSIGN_OR_RETURN(auto k, r->backend_->allocate(layer_bytes));
    ASSIGN_OR_RETURN(auto v, r->backend_->allocate(layer_bytes));
    r->kv_.k.push_back(k->f32());
    r->kv_.v.push_back(v->f32());
    r->kv_buffers_.push_back(std::move(k));
    r->kv_buffers_.push_back(std::move(v));
  }
  r->kv_.block_size = block_size;
  return r;
}

Result<std::vector<float>> ModelRunner::run(const SchedulerOutput& out) {
  const int32_t bs = kv_.block_size;
  const auto num_seqs = static_cast<int32_t>(out.scheduled.size());
  int32_t max_blocks = 1;
  for (const auto& s : out.scheduled) max_blocks = std::max<int32_t>(max_blocks, static_cast<int32_t>(s.seq->block_table.size()));

  // Host-side inputs, packed into one upload: ids, positions, slots,
  // query_start, context_len, block tables, logits indices.
  std::vector<int32_t> ids, positions, slots, query_start{0}, context_len, tables, logits_idx;
  tables.assign(static_cast<std::size_t>(num_seqs) * max_blocks, 0);
  for (int32_t i = 0; i < num_seqs; ++i) {
    const ScheduledSequence& s = out.scheduled[i];
    const Sequence& seq = *s.seq;
    for (int32_t p = seq.num_computed_tokens; p < seq.num_computed_tokens + s.num_new_tokens; ++p) {
      ids.push_back(seq.token_ids[p]);
      positions.push_back(p);
      slots.push_back(seq.block_table[p / bs] * bs + p % bs);
    }
    query_start.push_back(static_cast<int32_t>(ids.size()));
    context_len.push_back(seq.num_computed_tokens + s.num_new_tokens);
    std::copy(seq.block_table.begin(), seq.block_table.end(), tables.begin() + static_cast<std::ptrdiff_t>(i) * max_blocks);
    if (s.sample) logits_idx.push_back(query_start.back() - 1);
  }
  const auto T = static_cast<int64_t>(ids.size());
  std::vector<int32_t> packed;
  std::vector<std::size_t> offsets;
  for (const auto* v : {&ids, &positions, &slots, &query_start, &context_len, &tables, &logits_idx}) {
    offsets.push_back(packed.size());
    packed.insert(packed.end(), v->begin(), v->end());
  }
  ASSIGN_OR_RETURN(auto inputs, backend_->allocate(std::max<std::size_t>(1, packed.size()) * sizeof(int32_t)));
  backend_->copy_to_device(inputs->data(), packed.data(), packed.size() * sizeof(int32_t));
  const int32_t* base = inputs->i32();

  model::ForwardInputs in;
  in.num_tokens = T;
  in.token_ids = base + offsets[0];
  in.positions = base + offsets[1];
  in.slot_mapping = base + offsets[2];
  in.attention.num_seqs = num_seqs;
  in.attention.query_start = base + offsets[3];
  in.attention.context_len = base + offsets[4];
  in.attention.block_tables = base + offsets[5];
  in.attention.max_blocks_per_seq = max_blocks;
  in.attention.block_size = bs;
  in.num_logits = static_cast<int64_t>(logits_idx.size());
  in.logits_indices = base + offsets[6];

  const int64_t vocab = model_->config().vocab_size;
  ASSIGN_OR_RETURN(auto logits_dev,
                   backend_->allocate(std::max<std::size_t>(1, logits_idx.size()) * vocab * sizeof(float)));
  RETURN_IF_ERROR(model_->forward(in, kv_, logits_dev->f32()));
  std::vector<float> logits(logits_idx.size() * static_cast<std::size_t>(vocab));
  backend_->copy_to_host(logits.data(), logits_dev->data(), logits.size() * sizeof(float));
  backend_->synchronize();
  return logits;
}

}  // namespace llmctl::engine
