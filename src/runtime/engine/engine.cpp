#include "runtime/engine/engine.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "common/logging.h"
#include "runtime/engine/kv_cache_budget.h"
#include "runtime/engine/sampler.h"
#include "runtime/engine/scheduler_limits.h"

namespace llmctl::engine {

Result<std::unique_ptr<Engine>> Engine::create(std::unique_ptr<kernels::Backend> backend,
                                               const model::ModelConfig& config, const model::ModelWeights& weights,
                                               EngineConfig ec, std::vector<int32_t> eos_ids,
                                               Detokenizer detokenizer) {
  SchedulerConfig& sc = ec.scheduler;
  if (sc.block_size < 1) return Status::invalid_argument("block_size must be at least 1");
  if (sc.max_model_len > config.max_position_embeddings) {
    return Status::invalid_argument("max_model_len " + std::to_string(sc.max_model_len) +
                                    " exceeds the model's max_position_embeddings " +
                                    std::to_string(config.max_position_embeddings));
  }
  // 0 on the CPU backend, which reports no device memory.
  const uint64_t device_bytes = backend->memory_info().total_bytes;
  // Limits left at 0 follow the device (scheduler_limits.h).
  const std::string limits = resolve_scheduler_limits(sc, device_bytes);
  if (!limits.empty()) logger("engine")->info("{}", limits);
  const int64_t block_bytes = ModelRunner::kv_block_bytes(config, sc.block_size, backend->kv_dtype());
  const bool measure = sc.num_blocks == 0 && ec.kv_cache_bytes == 0 && device_bytes > 0;
  if (sc.num_blocks == 0 && !measure) {
    int64_t budget = ec.kv_cache_bytes;
    if (budget == 0) {
      const int64_t blocks_per_seq = (sc.max_model_len + sc.block_size - 1) / sc.block_size;
      budget = std::min<int64_t>(int64_t{4} << 30, blocks_per_seq * sc.max_num_seqs * block_bytes);
    }
    sc.num_blocks = static_cast<int32_t>(budget / block_bytes);
  }
  if (!measure) RETURN_IF_ERROR(sc.validate());
  // The largest step the scheduler may make: its token budget in one prompt,
  // and a sampling row for every running sequence.
  const int32_t profile_tokens = std::max(1, std::min(sc.max_num_batched_tokens, sc.max_model_len));
  const int32_t profile_blocks = (profile_tokens + sc.block_size - 1) / sc.block_size;
  std::unique_ptr<Engine> e(new Engine());
  // Start-up phases, logged once below, so a slow cold start shows its cause.
  using Clock = std::chrono::steady_clock;
  auto seconds_since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  auto phase_start = Clock::now();
  ASSIGN_OR_RETURN(e->runner_, ModelRunner::create(std::move(backend), config, weights,
                                                       measure ? profile_blocks : sc.num_blocks, sc.block_size,
                                                       ec.communicator));
  const double model_seconds = seconds_since(phase_start);
  phase_start = Clock::now();
  if (measure) {
    RETURN_IF_ERROR(e->runner_->profile(profile_tokens, std::min(sc.max_num_seqs, profile_tokens)));
    const kernels::Backend::MemoryInfo mem = e->runner_->memory_info();
    KvCacheDemand demand;
    demand.total_bytes = mem.total_bytes;
    demand.free_after_profile = mem.free_bytes > mem.cached_bytes ? mem.free_bytes - mem.cached_bytes : 0;
    demand.utilization = ec.gpu_memory_utilization;
    demand.block_bytes = e->runner_->rank_kv_block_bytes();
    demand.dtype = e->runner_->kv_dtype();
    demand.block_size = sc.block_size;
    demand.max_model_len = sc.max_model_len;
    // The profiling cache is still held: its bytes count as free for the plan.
    demand.free_after_profile += static_cast<uint64_t>(profile_blocks) * static_cast<uint64_t>(demand.block_bytes);
    demand.free_after_profile = std::min(demand.free_after_profile, demand.total_bytes);
    ASSIGN_OR_RETURN(KvCacheBudget budget, plan_kv_cache(demand));
    logger("engine")->info("{}", budget.summary);
    sc.num_blocks = budget.num_blocks;
    // More than every running sequence at full length could ever hold
    // would sit idle (one `generate` would take the whole GPU).
    const int64_t useful = static_cast<int64_t>(sc.max_num_seqs) * ((sc.max_model_len + sc.block_size - 1) / sc.block_size);
    if (sc.num_blocks > useful) {
      sc.num_blocks = static_cast<int32_t>(useful);
      logger("engine")->info("KV cache capped at {} blocks: {} sequences of {} tokens", useful, sc.max_num_seqs,
                             sc.max_model_len);
    }
    RETURN_IF_ERROR(e->runner_->resize_kv(sc.num_blocks));
  }
  RETURN_IF_ERROR(sc.validate());
  const double kv_seconds = seconds_since(phase_start);
  phase_start = Clock::now();
  if (!ec.enforce_eager && measure) {
    // Only devices that report memory (CUDA) have graphs; elsewhere this is a no-op.
    if (Status st = e->runner_->enable_decode_graphs(sc.max_num_seqs, sc.max_model_len); !st.is_ok()) {
      logger("engine")->info("decode steps run eagerly: {}", st.message());
    }
  }
  logger("engine")->info("start-up: model on the backend in {:.2f} s; KV cache sized in {:.2f} s{}; decode graphs in {:.2f} s",
                         model_seconds, kv_seconds, measure ? " (profiling step included)" : "",
                         seconds_since(phase_start));
  e->config_ = config;
  e->eos_ids_ = std::move(eos_ids);
  e->detokenizer_ = std::move(detokenizer);
  e->async_scheduling_ = ec.async_scheduling;
  e->scheduler_ = std::make_unique<Scheduler>(sc);
  return e;
}

int64_t Engine::decode_graph_replays() const { return runner_->graph_replays(); }

Result<uint64_t> Engine::add_request(std::vector<int32_t> prompt_ids, SamplingParams params) {
  RETURN_IF_ERROR(params.validate());
  if (prompt_ids.empty()) return Status::invalid_argument("prompt must have at least one token");
  const int32_t max_len = scheduler_->config().max_model_len;
  if (static_cast<int64_t>(prompt_ids.size()) >= max_len) {
    return Status::invalid_argument("prompt of " + std::to_string(prompt_ids.size()) +
                                    " tokens leaves no room within max_model_len " + std::to_string(max_len));
  }
  for (int32_t t : prompt_ids) {
    if (t < 0 || t >= config_.vocab_size) {
      return Status::invalid_argument("prompt token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                                      std::to_string(config_.vocab_size) + ")");
    }
  }
  if (!params.stop.empty() && !detokenizer_) {
    return Status::invalid_argument("stop strings need a tokenizer (none loaded)");
  }
  auto req = std::make_unique<Request>();
  req->id = next_request_id_++;
  req->params = std::move(params);
  const uint64_t base_seed = req->params.seed ? *req->params.seed : std::random_device{}();
  for (int i = 0; i < req->params.n; ++i) {
    auto seq = std::make_unique<Sequence>();
    seq->seq_id = next_seq_id_++;
    seq->request_id = req->id;
    seq->index = i;
    seq->params = &req->params;
    seq->token_ids = prompt_ids;
    seq->num_prompt_tokens = static_cast<int32_t>(prompt_ids.size());
    seq->rng.seed(base_seed + static_cast<uint64_t>(i));
    seq_owner_[seq->seq_id] = {req.get(), i};
    scheduler_->add(seq.get());
    req->seqs.push_back(std::move(seq));
    req->reported_tokens.push_back(0);
  }
  const uint64_t id = req->id;
  requests_[id] = std::move(req);
  return id;
}

void Engine::finish(Sequence& seq, FinishReason reason) {
  seq.status = SequenceStatus::kFinished;
  seq.finish_reason = reason;
  scheduler_->remove(&seq);
}

void Engine::abort_request(uint64_t request_id) {
  auto it = requests_.find(request_id);
  if (it == requests_.end()) return;
  for (auto& seq : it->second->seqs) {
    if (!seq->is_finished()) finish(*seq, FinishReason::kAbort);
  }
  it->second->dirty = true;
}

void Engine::check_stop(Sequence& seq, Request& req) {
  const SamplingParams& p = req.params;
  const int32_t last = seq.token_ids.back();
  const int32_t n_out = seq.num_output_tokens();
  // Text before this token: a stop string must end in the new text, so one
  // that appeared while min_tokens held the checks back is not acted on later.
  std::size_t checked_len = seq.output_text.size();
  if (detokenizer_) {
    const std::vector<int32_t> out_ids = seq.output_ids();
    seq.output_text = detokenizer_(out_ids);
  }
  checked_len = std::min(checked_len, seq.output_text.size());
  if (n_out >= p.min_tokens) {
    if (std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), last) != p.stop_token_ids.end()) {
      seq.stop_reason_token = last;
      finish(seq, FinishReason::kStop);
      return;
    }
    if (!p.ignore_eos && std::find(eos_ids_.begin(), eos_ids_.end(), last) != eos_ids_.end()) {
      finish(seq, FinishReason::kStop);
      return;
    }
    if (!p.stop.empty()) {
      // Searching from len(s) - 1 bytes before the new text finds a stop
      // string split across tokens.
      std::size_t best = std::string::npos, best_len = 0;
      for (const std::string& s : p.stop) {
        const std::size_t from = checked_len >= s.size() - 1 ? checked_len - (s.size() - 1) : 0;
        const std::size_t pos = seq.output_text.find(s, from);
        if (pos < best) {
          best = pos;
          best_len = s.size();
        }
      }
      if (best != std::string::npos) {
        seq.output_text.resize(p.include_stop_str_in_output ? best + best_len : best);
        finish(seq, FinishReason::kStop);
        return;
      }
    }
  }
  if (n_out >= p.max_tokens || seq.num_tokens() >= scheduler_->config().max_model_len) {
    finish(seq, FinishReason::kLength);
  }
}

namespace {

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

Status Engine::launch(SchedulerOutput out, StepBatch batch) {
  InFlight f;
  f.greedy = true;
  f.on_device = true;
  for (const ScheduledSequence& s : out.scheduled) {
    if (!s.sample) continue;
    f.greedy = f.greedy && Sampler::plain_greedy(*s.seq, eos_ids_);
    f.on_device = f.on_device && SamplingBatch::supports(*s.seq);
  }
  // A step with other rows is drawn where its logits are (sample_rows),
  // unless a row asks for logprobs: then the host Sampler sees every row.
  f.on_device = f.on_device && !f.greedy;
  SamplingBatch sampling;
  if (f.on_device) {
    for (const ScheduledSequence& s : out.scheduled) {
      if (s.sample) sampling.add(*s.seq, eos_ids_);
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  Status st = runner_->launch(std::move(batch), f.greedy || f.on_device, f.on_device ? &sampling : nullptr);
  runner_ms_ += ms_since(t0);
  RETURN_IF_ERROR(st);
  // What the step computes is known now; only its sampled ids are not.
  scheduler_->postprocess(out);
  f.out = std::move(out);
  in_flight_ = std::move(f);
  return Status::ok();
}

Status Engine::complete() {
  InFlight f = std::move(*in_flight_);
  in_flight_.reset();
  std::vector<int32_t> ids;
  const auto t0 = std::chrono::steady_clock::now();
  auto waited = runner_->wait(f.greedy || f.on_device ? &ids : nullptr);
  runner_ms_ += ms_since(t0);
  // The sampler sees the sequences as they were when the step was
  // scheduled; after a failed wait, none keeps a placeholder either.
  for (const ScheduledSequence& s : f.out.scheduled) {
    if (!s.seq->token_ids.empty() && s.seq->token_ids.back() == kPendingToken) s.seq->token_ids.pop_back();
  }
  ASSIGN_OR_RETURN(std::vector<float> logits, std::move(waited));
  const int64_t vocab = config_.vocab_size;
  std::size_t row = 0;
  for (const ScheduledSequence& s : f.out.scheduled) {
    if (!s.sample) continue;
    const std::size_t r = row++;
    Sequence& seq = *s.seq;
    if (seq.is_finished()) continue;  // aborted while the step ran
    Request& req = *seq_owner_.at(seq.seq_id).first;
    SampleResult res;
    if (f.greedy || f.on_device) {
      res.token_id = ids[r];
    } else {
      res = Sampler::sample(logits.data() + static_cast<std::ptrdiff_t>(r) * vocab, vocab, seq, eos_ids_);
    }
    seq.token_ids.push_back(res.token_id);
    if (req.params.logprobs) {
      seq.logprobs.push_back({res.token_id, res.logprob, std::move(res.top_logprobs)});
      seq.cumulative_logprob += res.logprob;
    }
    req.dirty = true;
    check_stop(seq, req);
  }
  return Status::ok();
}

bool Engine::ends_by_length(const Sequence& seq) const {
  // check_stop's length test, one token ahead.
  return seq.num_output_tokens() + 1 >= seq.params->max_tokens ||
         seq.num_tokens() + 1 >= scheduler_->config().max_model_len;
}

std::pair<SchedulerOutput, StepBatch> Engine::schedule_ahead() {
  for (const ScheduledSequence& s : in_flight_->out.scheduled) {
    // One that will surely stop now gets none: the scheduler skips it.
    if (!s.sample || s.seq->is_finished() || ends_by_length(*s.seq)) continue;
    s.seq->token_ids.push_back(kPendingToken);
  }
  std::pair<SchedulerOutput, StepBatch> next;
  next.first = scheduler_->schedule();
  if (!next.first.empty()) next.second = StepBatch::from_schedule(next.first, scheduler_->config().block_size);
  return next;
}

StepBatch Engine::settle(SchedulerOutput& next, StepBatch batch) {
  auto& rows = next.scheduled;
  const std::size_t before = rows.size();
  rows.erase(std::remove_if(rows.begin(), rows.end(), [](const ScheduledSequence& s) { return s.seq->is_finished(); }),
             rows.end());
  if (rows.size() != before) {
    // Rare (eos, a stop token or string): build the batch again without them.
    // Their budget stays unused this step.
    ++rebuilt_batches_;
    next.num_batched_tokens = 0;
    for (const ScheduledSequence& s : rows) next.num_batched_tokens += s.num_new_tokens;
    if (rows.empty()) return StepBatch();
    return StepBatch::from_schedule(next, scheduler_->config().block_size);
  }
  // A row that samples ends at the sequence's last token, the one that was
  // pending when the batch was built.
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (!rows[i].sample) continue;
    const Sequence& seq = *rows[i].seq;
    batch.token_ids[static_cast<std::size_t>(batch.query_start[i + 1] - 1)] =
        seq.token_ids[static_cast<std::size_t>(seq.num_computed_tokens + rows[i].num_new_tokens - 1)];
  }
  return batch;
}

Result<std::vector<RequestOutput>> Engine::step() {
  const auto t0 = std::chrono::steady_clock::now();
  runner_ms_ = 0;
  double overlapped_ms = 0;
  if (!in_flight_) {
    SchedulerOutput out = scheduler_->schedule();
    if (!out.empty()) {
      StepBatch batch = StepBatch::from_schedule(out, scheduler_->config().block_size);
      RETURN_IF_ERROR(launch(std::move(out), std::move(batch)));
    }
  }
  if (in_flight_) {
    std::pair<SchedulerOutput, StepBatch> next;
    if (async_scheduling_) {
      const auto w0 = std::chrono::steady_clock::now();
      next = schedule_ahead();
      overlapped_ms = ms_since(w0);
    }
    RETURN_IF_ERROR(complete());
    if (!next.first.empty()) {
      StepBatch batch = settle(next.first, std::move(next.second));
      if (!next.first.empty()) RETURN_IF_ERROR(launch(std::move(next.first), std::move(batch)));
    }
  }
  std::vector<RequestOutput> results = take_outputs();
  const double step_ms = ms_since(t0);
  runner_->note_engine_step(step_ms, step_ms - runner_ms_, overlapped_ms);
  return results;
}

std::vector<RequestOutput> Engine::take_outputs() {
  std::vector<RequestOutput> results;
  for (auto it = requests_.begin(); it != requests_.end();) {
    Request& req = *it->second;
    if (!req.dirty) {
      ++it;
      continue;
    }
    req.dirty = false;
    RequestOutput ro;
    ro.request_id = req.id;
    ro.num_prompt_tokens = req.seqs[0]->num_prompt_tokens;
    ro.finished = true;
    for (std::size_t i = 0; i < req.seqs.size(); ++i) {
      Sequence& seq = *req.seqs[i];
      CompletionOutput co;
      co.index = seq.index;
      co.token_ids = seq.output_ids();
      co.new_token_ids.assign(co.token_ids.begin() + static_cast<std::ptrdiff_t>(req.reported_tokens[i]),
                              co.token_ids.end());
      req.reported_tokens[i] = co.token_ids.size();
      co.text = seq.output_text;
      co.finish_reason = seq.finish_reason;
      co.logprobs = seq.logprobs;
      co.cumulative_logprob = seq.cumulative_logprob;
      ro.num_cached_tokens = std::max(ro.num_cached_tokens, seq.num_cached_tokens);
      ro.finished = ro.finished && seq.is_finished();
      ro.outputs.push_back(std::move(co));
    }
    results.push_back(std::move(ro));
    if (results.back().finished) {
      for (auto& seq : req.seqs) seq_owner_.erase(seq->seq_id);
      it = requests_.erase(it);
    } else {
      ++it;
    }
  }
  return results;
}

}  // namespace llmctl::engine
