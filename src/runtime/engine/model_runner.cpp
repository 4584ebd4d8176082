#include "runtime/engine/model_runner.h"

#include <algorithm>

#include "runtime/dist/communicator.h"

namespace llmctl::engine {

int64_t ModelRunner::kv_block_bytes(const model::ModelConfig& c, int32_t block_size) {
  return 2 * c.num_hidden_layers * static_cast<int64_t>(block_size) * c.kv_size() * static_cast<int64_t>(sizeof(float));
}

Result<std::unique_ptr<ModelRunner>> ModelRunner::create(std::unique_ptr<kernels::Backend> backend,
                                                         const model::ModelConfig& config,
                                                         const model::ModelWeights& weights, int32_t num_blocks,
                                                         int32_t block_size, dist::Communicator* comm) {
  std::unique_ptr<ModelRunner> r(new ModelRunner());
  r->backend_ = std::move(backend);
  ASSIGN_OR_RETURN(r->model_, model::DecoderModel::create(config, weights, r->backend_.get(), comm));
  const int64_t kv_width = r->model_->layout().num_kv_heads * config.head_dim;
  const auto layer_bytes = static_cast<std::size_t>(num_blocks) * block_size * kv_width * sizeof(float);
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    ASSIGN_OR_RETURN(auto k, r->backend_->allocate(layer_bytes));
    ASSIGN_OR_RETURN(auto v, r->backend_->allocate(layer_bytes));
    r->kv_.k.push_back(k->f32());
    r->kv_.v.push_back(v->f32());
    r->kv_buffers_.push_back(std::move(k));
    r->kv_buffers_.push_back(std::move(v));
  }
  r->kv_.block_size = block_size;
  if (comm != nullptr && comm->world_size() > 1 && comm->rank() == 0) {
    RankMessage init;
    init.kind = RankMessage::Kind::kInit;
    init.num_blocks = num_blocks;
    init.block_size = block_size;
    std::string bytes = init.encode();
    RETURN_IF_ERROR(comm->broadcast_bytes(bytes, 0));
    r->comm_ = comm;
  }
  return r;
}

ModelRunner::~ModelRunner() {
  if (comm_ == nullptr || comm_failed_) return;
  RankMessage stop;
  stop.kind = RankMessage::Kind::kStop;
  std::string bytes = stop.encode();
  // Best effort: a rank that is gone already has nothing to stop.
  (void)comm_->broadcast_bytes(bytes, 0);
}

Result<std::vector<float>> ModelRunner::run(const SchedulerOutput& out, std::vector<int32_t>* greedy_ids) {
  StepBatch batch = StepBatch::from_schedule(out, kv_.block_size);
  if (comm_ != nullptr) {
    if (comm_failed_) return Status::unavailable("a tensor-parallel rank failed earlier; the engine cannot run");
    RankMessage step;
    step.batch = std::move(batch);
    std::string bytes = step.encode();
    if (Status st = comm_->broadcast_bytes(bytes, 0); !st.is_ok()) {
      comm_failed_ = true;
      return st.with_context("sending the step to the other ranks");
    }
    batch = std::move(step.batch);
  }
  auto logits = execute(batch, greedy_ids);
  if (!logits.is_ok() && comm_ != nullptr) comm_failed_ = true;
  return logits;
}

Result<std::vector<float>> ModelRunner::execute(const StepBatch& b, std::vector<int32_t>* greedy_ids) {
  const int64_t T = b.num_tokens();
  // Host-side inputs, packed into one upload.
  std::vector<const std::vector<int32_t>*> parts = {&b.token_ids,   &b.positions,    &b.slot_mapping, &b.query_start,
                                                    &b.context_len, &b.block_tables, &b.logits_indices};
  std::vector<int32_t> embedding_rows;
  if (model_->layout().sharded()) {
    embedding_rows.reserve(b.token_ids.size());
    for (int32_t id : b.token_ids) embedding_rows.push_back(model_->embedding_row(id));
    parts.push_back(&embedding_rows);
  }
  std::vector<int32_t> packed;
  std::vector<std::size_t> offsets;
  for (const auto* v : parts) {
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
  in.attention.num_seqs = b.num_seqs();
  in.attention.query_start = base + offsets[3];
  in.attention.context_len = base + offsets[4];
  in.attention.block_tables = base + offsets[5];
  in.attention.max_blocks_per_seq = b.max_blocks_per_seq;
  in.attention.block_size = kv_.block_size;
  in.num_logits = static_cast<int64_t>(b.logits_indices.size());
  in.logits_indices = base + offsets[6];
  if (model_->layout().sharded()) in.embedding_rows = base + offsets[7];

  const int64_t vocab = model_->config().vocab_size;
  const int64_t out_floats = model_->logits_floats(in.num_logits);
  ASSIGN_OR_RETURN(auto logits_dev,
                   backend_->allocate(std::max<std::size_t>(1, static_cast<std::size_t>(out_floats)) * sizeof(float)));
  RETURN_IF_ERROR(model_->forward(in, kv_, logits_dev->f32()));
  if (greedy_ids != nullptr && !model_->layout().sharded()) {
    greedy_ids->resize(static_cast<std::size_t>(in.num_logits));
    ASSIGN_OR_RETURN(auto ids_dev, backend_->allocate(std::max<std::size_t>(1, greedy_ids->size()) * sizeof(int32_t)));
    backend_->argmax_rows(ids_dev->i32(), logits_dev->f32(), in.num_logits, vocab);
    backend_->copy_to_host(greedy_ids->data(), ids_dev->data(), greedy_ids->size() * sizeof(int32_t));
    backend_->synchronize();
    return std::vector<float>();
  }
  std::vector<float> logits(static_cast<std::size_t>(out_floats));
  backend_->copy_to_host(logits.data(), logits_dev->data(), logits.size() * sizeof(float));
  backend_->synchronize();
  if (!model_->layout().sharded()) return logits;
  std::vector<float> joined(static_cast<std::size_t>(in.num_logits * vocab));
  model_->join_logits(logits.data(), in.num_logits, joined.data());
  if (greedy_ids != nullptr) {
    // The rows are whole only after the join: pick on the host.
    greedy_ids->resize(static_cast<std::size_t>(in.num_logits));
    kernels::Backend::argmax_rows_on_host(greedy_ids->data(), joined.data(), in.num_logits, vocab);
  }
  return joined;
}

}  // namespace llmctl::engine
