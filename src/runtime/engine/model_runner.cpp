#include "runtime/engine/model_runner.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

#include "runtime/dist/communicator.h"
#include "runtime/engine/kv_cache_budget.h"

namespace llmctl::engine {
namespace {

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int64_t ModelRunner::kv_block_bytes(const model::ModelConfig& c, int32_t block_size, kernels::KvDtype dtype) {
  return engine::kv_block_bytes(c.num_hidden_layers, block_size, c.num_key_value_heads, c.head_dim, dtype);
}

Result<std::unique_ptr<ModelRunner>> ModelRunner::create(std::unique_ptr<kernels::Backend> backend,
                                                         const model::ModelConfig& config,
                                                         const model::ModelWeights& weights, int32_t num_blocks,
                                                         int32_t block_size, dist::Communicator* comm) {
  std::unique_ptr<ModelRunner> r(new ModelRunner());
  r->timing_.enabled = std::getenv("LLMCTL_STEP_TIMING") != nullptr;
  r->backend_ = std::move(backend);
  ASSIGN_OR_RETURN(r->model_, model::DecoderModel::create(config, weights, r->backend_.get(), comm));
  r->kv_.block_size = block_size;
  RETURN_IF_ERROR(r->allocate_kv(num_blocks));
  if (comm != nullptr && comm->world_size() > 1) r->group_ = comm;
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

int64_t ModelRunner::rank_kv_block_bytes() const {
  return engine::kv_block_bytes(model_->config().num_hidden_layers, kv_.block_size, model_->layout().num_kv_heads,
                                model_->config().head_dim, backend_->kv_dtype());
}

Status ModelRunner::allocate_kv(int32_t num_blocks) {
  if (num_blocks < 1) return Status::invalid_argument("the KV cache needs at least one block");
  graphs_.reset();  // they point into the old cache
  kv_.k.clear();
  kv_.v.clear();
  kv_buffers_.clear();  // the old cache goes back before the new one is taken
  num_blocks_ = num_blocks;
  // One layer's K (or V) of one block: the rank's block bytes over 2 * layers.
  const int64_t block_layer_bytes = rank_kv_block_bytes() / (2 * model_->config().num_hidden_layers);
  // + 1: the scratch block decode graphs' padding rows write to.
  const auto layer_bytes = static_cast<std::size_t>(num_blocks + 1) * static_cast<std::size_t>(block_layer_bytes);
  for (int64_t l = 0; l < model_->config().num_hidden_layers; ++l) {
    auto k = backend_->allocate(layer_bytes);
    auto v = k.is_ok() ? backend_->allocate(layer_bytes) : Result<std::unique_ptr<kernels::DeviceBuffer>>(k.status());
    if (!v.is_ok()) {
      return v.status().with_context(fmt::format("allocating a KV cache of {} blocks ({:.2f} GiB) at layer {}",
                                                 num_blocks, static_cast<double>(layer_bytes) * 2 *
                                                     static_cast<double>(model_->config().num_hidden_layers) / (1 << 30),
                                                 l));
    }
    kv_.k.push_back((*k)->data());
    kv_.v.push_back((*v)->data());
    kv_buffers_.push_back(std::move(k).value());
    kv_buffers_.push_back(std::move(v).value());
  }
  return Status::ok();
}

Status ModelRunner::enable_decode_graphs(int32_t max_num_seqs, int32_t max_model_len) {
  ASSIGN_OR_RETURN(graphs_, DecodeGraphs::create(*backend_, *model_, max_num_seqs, max_model_len, kv_.block_size,
                                                 /*scratch_block=*/num_blocks_));
  if (comm_ != nullptr) {
    if (comm_failed_) return Status::unavailable("a tensor-parallel rank failed earlier; the engine cannot run");
    RankMessage graphs;
    graphs.kind = RankMessage::Kind::kGraphs;
    graphs.max_num_seqs = max_num_seqs;
    graphs.max_model_len = max_model_len;
    std::string bytes = graphs.encode();
    if (Status st = comm_->broadcast_bytes(bytes, 0); !st.is_ok()) {
      comm_failed_ = true;
      graphs_.reset();
      return st.with_context("telling the other ranks to replay decode graphs");
    }
  }
  return Status::ok();
}

int64_t ModelRunner::graph_replays() const { return graphs_ ? graphs_->replays() : 0; }

Status ModelRunner::resize_kv(int32_t num_blocks) {
  if (comm_ != nullptr) {
    if (comm_failed_) return Status::unavailable("a tensor-parallel rank failed earlier; the engine cannot run");
    RankMessage resize;
    resize.kind = RankMessage::Kind::kInit;
    resize.num_blocks = num_blocks;
    resize.block_size = kv_.block_size;
    std::string bytes = resize.encode();
    if (Status st = comm_->broadcast_bytes(bytes, 0); !st.is_ok()) {
      comm_failed_ = true;
      return st.with_context("sending the KV cache size to the other ranks");
    }
  }
  return allocate_kv(num_blocks);
}

Status ModelRunner::profile(int32_t num_tokens, int32_t num_logits) {
  if (num_tokens < 1) return Status::invalid_argument("a profiling step needs at least one token");
  num_logits = std::clamp(num_logits, 1, num_tokens);
  StepBatch b;
  const int32_t blocks = (num_tokens + kv_.block_size - 1) / kv_.block_size;
  b.max_blocks_per_seq = blocks;
  b.token_ids.assign(static_cast<std::size_t>(num_tokens), 0);
  for (int32_t i = 0; i < num_tokens; ++i) {
    b.positions.push_back(i);
    b.slot_mapping.push_back(i);
  }
  b.query_start = {0, num_tokens};
  b.context_len = {num_tokens};
  for (int32_t i = 0; i < blocks; ++i) b.block_tables.push_back(i);
  for (int32_t i = num_tokens - num_logits; i < num_tokens; ++i) b.logits_indices.push_back(i);
  Status st = launch(std::move(b), /*want_ids=*/false);
  if (st.is_ok()) st = wait(nullptr).status();
  return st.is_ok() ? Status::ok() : st.with_context("the KV-cache sizing step");
}

ModelRunner::~ModelRunner() {
  const int64_t eager_steps = timing_.eager.total_steps(), graph_steps = timing_.graphs.total_steps();
  if (timing_.enabled && eager_steps + graph_steps > 0) {
    std::fprintf(stderr,
                 "llmctl step timing: rank %d: %lld eager steps: %.1f ms sending batches, %.1f ms preparing and "
                 "launching on the host, %.1f ms waiting for the device; %lld decode steps as CUDA graphs: %.1f ms\n",
                 group_ != nullptr ? group_->rank() : 0, static_cast<long long>(eager_steps), timing_.send_ms,
                 timing_.launch_ms, timing_.wait_ms, static_cast<long long>(graph_steps), timing_.graphs.total_ms());
  }
  if (timing_.enabled && eager_steps > 0) {
    std::fprintf(stderr, "llmctl step timing: rank %d: eager steps by size: %s\n",
                 group_ != nullptr ? group_->rank() : 0, timing_.eager.describe("tokens").c_str());
  }
  if (timing_.enabled && graph_steps > 0) {
    std::fprintf(stderr, "llmctl step timing: rank %d: decode graph steps by batch: %s\n",
                 group_ != nullptr ? group_->rank() : 0, timing_.graphs.describe("sequences").c_str());
  }
  if (timing_.enabled && timing_.engine_steps > 0) {
    // Rank 0's engine: what the steps cost beyond the runner's figures above.
    std::fprintf(stderr,
                 "llmctl step timing: engine: %lld steps took %.1f ms, of which %.1f ms host work outside the model "
                 "runner (scheduling, stop checks, outputs), %.1f ms of that between a step's launch and its wait (on a "
                 "GPU, while the step runs)\n",
                 static_cast<long long>(timing_.engine_steps), timing_.engine_ms, timing_.engine_host_ms,
                 timing_.engine_overlapped_ms);
  }
  if (comm_ == nullptr || comm_failed_) return;
  RankMessage stop;
  stop.kind = RankMessage::Kind::kStop;
  std::string bytes = stop.encode();
  // Best effort: a rank that is gone already has nothing to stop.
  (void)comm_->broadcast_bytes(bytes, 0);
}

Status ModelRunner::launch(StepBatch batch, bool want_ids, const SamplingBatch* sampling) {
  const auto t0 = std::chrono::steady_clock::now();
  if (pending_.active) return Status::internal("a step was launched before the previous one was waited for");
  batch.greedy = want_ids && sampling == nullptr;
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
  if (timing_.enabled) timing_.send_ms += ms_since(t0);
  Status st = enqueue(batch, want_ids, sampling);
  if (!st.is_ok() && comm_ != nullptr) comm_failed_ = true;
  return st;
}

Result<std::vector<float>> ModelRunner::wait(std::vector<int32_t>* greedy_ids) {
  auto logits = collect(greedy_ids);
  if (!logits.is_ok() && comm_ != nullptr) comm_failed_ = true;
  return logits;
}

Result<std::vector<float>> ModelRunner::execute(const StepBatch& b, std::vector<int32_t>* greedy_ids,
                                                const SamplingBatch* sampling) {
  RETURN_IF_ERROR(enqueue(b, greedy_ids != nullptr, sampling));
  return collect(greedy_ids);
}

void ModelRunner::note_engine_step(double step_ms, double host_ms, double overlapped_ms) {
  if (!timing_.enabled) return;
  ++timing_.engine_steps;
  timing_.engine_ms += step_ms;
  timing_.engine_host_ms += host_ms;
  timing_.engine_overlapped_ms += overlapped_ms;
}

Status ModelRunner::sample_rows_on_host(float* logits, int64_t rows, const SamplingBatch& sampling,
                                        std::vector<int32_t>* ids) const {
  if (sampling.rows() != rows || ids == nullptr) return Status::internal("a sampling row per logits row is needed");
  ids->resize(static_cast<std::size_t>(rows));
  kernels::Backend::sample_rows_on_host(ids->data(), logits, sampling.host_view(model_->config().vocab_size));
  return Status::ok();
}

Status ModelRunner::upload_sampling(const SamplingBatch& sampling) {
  const int64_t rows = sampling.rows();
  std::vector<int32_t> lists = sampling.seen_tokens;
  lists.insert(lists.end(), sampling.seen_output_counts.begin(), sampling.seen_output_counts.end());
  lists.insert(lists.end(), sampling.banned_tokens.begin(), sampling.banned_tokens.end());
  // One buffer: the rows' settings (8-byte aligned), their ids, the lists.
  const std::size_t params_bytes = sampling.params.size() * sizeof(kernels::SamplingRowParams);
  const std::size_t ints = static_cast<std::size_t>(rows) + lists.size();
  ASSIGN_OR_RETURN(pending_.sampling_buffer,
                   backend_->allocate(std::max<std::size_t>(1, params_bytes + ints * sizeof(int32_t))));
  auto* bytes = static_cast<unsigned char*>(pending_.sampling_buffer->data());
  pending_.sample_ids = reinterpret_cast<int32_t*>(bytes + params_bytes);
  int32_t* lists_dev = pending_.sample_ids + rows;
  backend_->copy_to_device(bytes, sampling.params.data(), params_bytes);
  if (!lists.empty()) backend_->copy_to_device(lists_dev, lists.data(), lists.size() * sizeof(int32_t));
  kernels::SamplingRows& in = pending_.device_rows;
  in.rows = rows;
  in.vocab = model_->config().vocab_size;
  in.params = reinterpret_cast<const kernels::SamplingRowParams*>(bytes);
  in.seen_tokens = lists_dev;
  in.seen_output_counts = lists_dev + sampling.seen_tokens.size();
  in.banned_tokens = in.seen_output_counts + sampling.seen_output_counts.size();
  return Status::ok();
}

void ModelRunner::enqueue_sampling(float* logits) {
  backend_->sample_rows(pending_.sample_ids, logits, pending_.device_rows);
  pending_.sampled_on_device = true;
}

Status ModelRunner::enqueue(const StepBatch& b, bool want_ids, const SamplingBatch* sampling) {
  if (pending_.active) return Status::internal("a step was enqueued before the previous one was collected");
  pending_ = Pending{};
  Pending& p = pending_;
  p.start = std::chrono::steady_clock::now();
  p.num_seqs = b.num_seqs();
  // Rank 0 flags plain-greedy steps in the batch (launch), so every rank
  // exchanges the same thing: (maximum, index) pairs instead of logits.
  p.greedy = b.greedy || (group_ == nullptr && want_ids && sampling == nullptr);
  const bool sharded = model_->layout().sharded();
  const bool graph = graphs_ != nullptr && graphs_->accepts(b);
  if (sampling != nullptr) {
    const int64_t rows = graph ? b.num_seqs() : static_cast<int64_t>(b.logits_indices.size());
    if (sampling->rows() != rows) return Status::internal("a sampling row per logits row is needed");
    // A sharded model's rows are whole only once joined on the host: drawn
    // there. Otherwise the settings go up now, while the stream is idle.
    if (sharded) {
      p.sampling = *sampling;
    } else {
      RETURN_IF_ERROR(upload_sampling(*sampling));
    }
  }
  if (graph) {
    p.graph = true;
    RETURN_IF_ERROR(graphs_->launch(b, kv_));
    if (p.sampling_buffer != nullptr) enqueue_sampling(graphs_->logits());
    p.launched = std::chrono::steady_clock::now();
    p.active = true;
    return Status::ok();
  }
  const int64_t T = b.num_tokens();
  p.num_tokens = T;
  // Host-side inputs, packed into one upload.
  std::vector<const std::vector<int32_t>*> parts = {&b.token_ids,   &b.positions,    &b.slot_mapping, &b.query_start,
                                                    &b.context_len, &b.block_tables, &b.logits_indices};
  std::vector<int32_t> embedding_rows;
  if (sharded) {
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
  ASSIGN_OR_RETURN(p.inputs, backend_->allocate(std::max<std::size_t>(1, packed.size()) * sizeof(int32_t)));
  backend_->copy_to_device(p.inputs->data(), packed.data(), packed.size() * sizeof(int32_t));
  const int32_t* base = p.inputs->i32();

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
  // The scheduler puts running decodes first: the backend may run them on
  // its decode kernel apart from the step's prefill rows.
  while (in.attention.num_decode_seqs < b.num_seqs() &&
         b.query_start[static_cast<std::size_t>(in.attention.num_decode_seqs) + 1] -
                 b.query_start[static_cast<std::size_t>(in.attention.num_decode_seqs)] ==
             1) {
    ++in.attention.num_decode_seqs;
  }
  in.num_logits = static_cast<int64_t>(b.logits_indices.size());
  in.logits_indices = base + offsets[6];
  if (sharded) in.embedding_rows = base + offsets[7];

  // A sharded greedy step brings no logits together, not even on the device.
  p.num_logits = in.num_logits;
  p.out_floats = p.greedy && sharded ? 0 : model_->logits_floats(in.num_logits);
  ASSIGN_OR_RETURN(p.logits, backend_->allocate(std::max<std::size_t>(1, static_cast<std::size_t>(p.out_floats)) *
                                                sizeof(float)));
  if (p.greedy) {
    ASSIGN_OR_RETURN(p.ids, backend_->allocate(static_cast<std::size_t>(std::max<int64_t>(1, in.num_logits)) *
                                               sizeof(int32_t)));
  }
  RETURN_IF_ERROR(model_->forward(in, kv_, p.logits->f32(), p.greedy ? p.ids->i32() : nullptr));
  if (p.sampling_buffer != nullptr) enqueue_sampling(p.logits->f32());
  p.launched = std::chrono::steady_clock::now();
  p.active = true;
  return Status::ok();
}

Result<std::vector<float>> ModelRunner::collect(std::vector<int32_t>* greedy_ids) {
  if (!pending_.active) return Status::internal("no step was launched to wait for");
  Pending p = std::move(pending_);
  pending_ = Pending{};
  // From here until the function returns; with the launch, the step's time.
  struct Clocked {
    StepTiming& t;
    const Pending& p;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    ~Clocked() {
      if (!t.enabled) return;
      const double launch_ms = std::chrono::duration<double, std::milli>(p.launched - p.start).count();
      if (p.graph) {
        t.graphs.add(p.num_seqs, launch_ms + ms_since(start));
        return;
      }
      t.launch_ms += launch_ms;
      const double wait_ms = ms_since(start);
      t.wait_ms += wait_ms;
      t.eager.add(p.num_tokens, launch_ms + wait_ms);
    }
  } clocked{timing_, p};
  if (group_ != nullptr) {
    // NCCL's collectives are only enqueued: a copy from the device now would
    // wait without bound on a peer that died mid-step; this waits at most
    // the group's time-out and names the peer.
    RETURN_IF_ERROR(group_->synchronize());
    if (group_->rank() != 0) return std::vector<float>();
  }
  if (p.sampled_on_device || p.sampling.has_value()) {
    if (greedy_ids == nullptr) return Status::internal("a sampled step needs somewhere to put its ids");
  }
  if (p.sampled_on_device) {
    // Only the ids come back: 4 bytes per row.
    greedy_ids->resize(static_cast<std::size_t>(p.device_rows.rows));
    backend_->copy_to_host(greedy_ids->data(), p.sample_ids, greedy_ids->size() * sizeof(int32_t));
    backend_->synchronize();
    return std::vector<float>();
  }
  if (p.graph) {
    if (p.sampling.has_value()) {
      // A sharded model's rows are whole only once joined on the host.
      ASSIGN_OR_RETURN(std::vector<float> joined, graphs_->read(p.num_seqs, nullptr));
      RETURN_IF_ERROR(sample_rows_on_host(joined.data(), p.num_seqs, *p.sampling, greedy_ids));
      return std::vector<float>();
    }
    return graphs_->read(p.num_seqs, p.greedy ? greedy_ids : nullptr);
  }
  const bool sharded = model_->layout().sharded();
  if (p.greedy && greedy_ids != nullptr) {
    // Only the ids come back: 4 bytes per row.
    greedy_ids->resize(static_cast<std::size_t>(p.num_logits));
    backend_->copy_to_host(greedy_ids->data(), p.ids->data(), greedy_ids->size() * sizeof(int32_t));
    backend_->synchronize();
    return std::vector<float>();
  }
  if (p.greedy && sharded) return Status::internal("a greedy step of a sharded model has no logits to return");
  std::vector<float> logits(static_cast<std::size_t>(p.out_floats));
  backend_->copy_to_host(logits.data(), p.logits->data(), logits.size() * sizeof(float));
  backend_->synchronize();
  if (!sharded) return logits;
  const int64_t vocab = model_->config().vocab_size;
  std::vector<float> joined(static_cast<std::size_t>(p.num_logits * vocab));
  model_->join_logits(logits.data(), p.num_logits, joined.data());
  if (p.sampling.has_value()) {
    // The rows are whole only after the join: the host twin draws there.
    RETURN_IF_ERROR(sample_rows_on_host(joined.data(), p.num_logits, *p.sampling, greedy_ids));
    return std::vector<float>();
  }
  if (greedy_ids != nullptr) {
    // A batch not flagged greedy (execute() called directly): pick on the host.
    greedy_ids->resize(static_cast<std::size_t>(p.num_logits));
    kernels::Backend::argmax_rows_on_host(greedy_ids->data(), joined.data(), p.num_logits, vocab);
  }
  return joined;
}

}  // namespace llmctl::engine
