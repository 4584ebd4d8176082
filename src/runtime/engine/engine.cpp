#include "runtime/engine/engine.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "common/logging.h"
#include "runtime/engine/kv_cache_budget.h"
#include "runtime/engine/sampler.h"

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
  const int64_t block_bytes = ModelRunner::kv_block_bytes(config, sc.block_size, backend->kv_dtype());
  const bool measure = sc.num_blocks == 0 && ec.kv_cache_bytes == 0 && backend->memory_info().total_bytes > 0;
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

Result<std::vector<RequestOutput>> Engine::step() {
  SchedulerOutput out = scheduler_->schedule();
  if (!out.empty()) {
    bool greedy = true, on_device = true;
    for (const ScheduledSequence& s : out.scheduled) {
      if (!s.sample) continue;
      greedy = greedy && Sampler::plain_greedy(*s.seq, eos_ids_);
      on_device = on_device && SamplingBatch::supports(*s.seq);
    }
    // A step with other rows is drawn where its logits are (sample_rows),
    // unless a row asks for logprobs: then the host Sampler sees every row.
    on_device = on_device && !greedy;
    SamplingBatch sampling;
    if (on_device) {
      for (const ScheduledSequence& s : out.scheduled) {
        if (s.sample) sampling.add(*s.seq, eos_ids_);
      }
    }
    std::vector<int32_t> greedy_ids;
    ASSIGN_OR_RETURN(std::vector<float> logits,
                     runner_->run(out, greedy || on_device ? &greedy_ids : nullptr, on_device ? &sampling : nullptr));
    scheduler_->postprocess(out);
    const int64_t vocab = config_.vocab_size;
    std::size_t row = 0;
    for (const ScheduledSequence& s : out.scheduled) {
      if (!s.sample) continue;
      Sequence& seq = *s.seq;
      Request& req = *seq_owner_.at(seq.seq_id).first;
      SampleResult r;
      if (greedy || on_device) {
        r.token_id = greedy_ids[row];
      } else {
        r = Sampler::sample(logits.data() + row * vocab, vocab, seq, eos_ids_);
      }
      ++row;
      seq.token_ids.push_back(r.token_id);
      if (req.params.logprobs) {
        seq.logprobs.push_back({r.token_id, r.logprob, std::move(r.top_logprobs)});
        seq.cumulative_logprob += r.logprob;
      }
      req.dirty = true;
      check_stop(seq, req);
    }
  }

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
