#include "runtime/server/engine_backend.h"

#include <algorithm>

#include "common/logging.h"

namespace llmctl::server {
namespace {

engine::SamplingParams to_engine(const SamplingOptions& s) {
  engine::SamplingParams p;
  p.n = 1;
  p.temperature = s.temperature;
  p.top_p = s.top_p;
  p.top_k = s.top_k;
  p.min_p = s.min_p;
  p.repetition_penalty = s.repetition_penalty;
  p.presence_penalty = s.presence_penalty;
  p.frequency_penalty = s.frequency_penalty;
  p.seed = s.seed;
  p.stop_token_ids = s.stop_token_ids;
  p.ignore_eos = s.ignore_eos;
  p.include_stop_str_in_output = true;  // the stop token's text is the server's call
  p.min_tokens = s.min_tokens;
  p.max_tokens = s.max_tokens;
  p.logprobs = s.logprobs;
  return p;
}

FinishReason from_engine(engine::FinishReason r) {
  switch (r) {
    case engine::FinishReason::kStop: return FinishReason::kStop;
    case engine::FinishReason::kLength: return FinishReason::kLength;
    case engine::FinishReason::kAbort: return FinishReason::kAbort;
    case engine::FinishReason::kNone: break;
  }
  return FinishReason::kNone;
}

}  // namespace

EngineBackend::EngineBackend() = default;

EngineBackend::~EngineBackend() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void EngineBackend::retire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Whatever the engine thread left unanswered fails now, so no client waits
  // on an engine that is gone.
  const std::string why = failure();
  fail_all(why.empty() ? "the engine was stopped" : why);
  engine_.reset();
}

void EngineBackend::fail_all(const std::string& why) {
  std::vector<EventSink> failed;
  for (auto& [eid, live] : live_) failed.push_back(std::move(live.sink));
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Pending& p : inbox_) failed.push_back(std::move(p.sink));
    inbox_.clear();
  }
  live_.clear();
  engine_id_of_.clear();
  for (EventSink& sink : failed) {
    GenerationEvent ev;
    ev.finish_reason = FinishReason::kError;
    ev.error = why;
    sink(std::move(ev));
  }
}

void EngineBackend::start(std::unique_ptr<engine::Engine> engine, std::vector<int32_t> eos_ids) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = false;
    failure_.clear();
    inbox_.clear();
    cancels_.clear();
  }
  engine_ = std::move(engine);
  eos_ids_ = std::move(eos_ids);
  state_ = BackendState::kReady;
  thread_ = std::thread([this] { run(); });
}

void EngineBackend::mark_dead(const std::string& reason) {
  // Under the lock, as submit() checks the state there: a request is either
  // refused or in the inbox before the engine thread drains it.
  std::lock_guard<std::mutex> lock(mu_);
  if (failure_.empty()) failure_ = reason;
  state_ = BackendState::kDead;
}

std::string EngineBackend::failure() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

Status EngineBackend::submit(GenerationRequest request, EventSink sink) {
  if (state_ == BackendState::kDead) {
    std::string why = failure();
    return Status::unavailable(why.empty() ? "the engine has died" : "the engine has died: " + why);
  }
  if (state_ != BackendState::kReady) return Status::unavailable("the engine is not ready");
  RETURN_IF_ERROR(to_engine(request.sampling).validate());
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ == BackendState::kDead) {  // died since the check above
      return Status::unavailable(failure_.empty() ? "the engine has died" : "the engine has died: " + failure_);
    }
    inbox_.push_back({std::move(request), std::move(sink)});
  }
  cv_.notify_all();
  return Status::ok();
}

void EngineBackend::cancel(uint64_t request_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancels_.push_back(request_id);
  }
  cv_.notify_all();
}

BackendStats EngineBackend::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void EngineBackend::run() {
  auto log = logger("engine");
  while (true) {
    std::vector<Pending> inbox;
    std::vector<uint64_t> cancels;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !inbox_.empty() || !cancels_.empty() || engine_->has_unfinished(); });
      if (stop_) return;
      inbox.swap(inbox_);
      cancels.swap(cancels_);
    }
    for (Pending& p : inbox) {
      std::vector<int32_t> stop_ids = eos_ids_;
      stop_ids.insert(stop_ids.end(), p.request.sampling.stop_token_ids.begin(),
                      p.request.sampling.stop_token_ids.end());
      Result<uint64_t> id = engine_->add_request(p.request.prompt_ids, to_engine(p.request.sampling));
      if (!id.is_ok()) {
        GenerationEvent ev;
        ev.finish_reason = FinishReason::kError;
        ev.error = id.status().message();
        p.sink(std::move(ev));
        continue;
      }
      engine_id_of_[p.request.request_id] = *id;
      live_[*id] = Live{p.request.request_id, std::move(p.sink), std::move(stop_ids)};
    }
    for (uint64_t server_id : cancels) {
      auto it = engine_id_of_.find(server_id);
      if (it != engine_id_of_.end()) engine_->abort_request(it->second);
    }
    if (!engine_->has_unfinished()) continue;
    Result<std::vector<engine::RequestOutput>> outs = engine_->step();
    if (!outs.is_ok()) {
      log->error("engine step failed: {}", outs.status().to_string());
      mark_dead(outs.status().message());
      // The requests in the step and those that arrived during it (still in
      // the inbox) all fail now; none waits for serve to stop.
      fail_all(outs.status().message());
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_; });
      return;
    }
    for (engine::RequestOutput& out : *outs) {
      auto it = live_.find(out.request_id);
      if (it == live_.end() || out.outputs.empty()) continue;
      engine::CompletionOutput& co = out.outputs[0];
      GenerationEvent ev;
      ev.new_token_ids = co.new_token_ids;
      ev.num_cached_prompt_tokens = out.num_cached_tokens;
      if (!co.logprobs.empty()) {
        size_t n = std::min(co.logprobs.size(), co.new_token_ids.size());
        for (size_t i = co.logprobs.size() - n; i < co.logprobs.size(); ++i) {
          ev.logprobs.push_back({co.logprobs[i].token_id, co.logprobs[i].logprob, co.logprobs[i].top});
        }
      }
      if (out.finished) {
        ev.finish_reason = from_engine(co.finish_reason);
        if (ev.finish_reason == FinishReason::kStop && !co.token_ids.empty()) {
          int32_t last = co.token_ids.back();
          const auto& ids = it->second.stop_ids;
          if (std::find(ids.begin(), ids.end(), last) != ids.end()) ev.stop_token_id = last;
        }
      }
      it->second.sink(std::move(ev));
      if (out.finished) {
        engine_id_of_.erase(it->second.server_id);
        live_.erase(it);
      }
    }
    const engine::Scheduler& sched = engine_->scheduler();
    const auto& blocks = sched.block_manager();
    std::lock_guard<std::mutex> lock(mu_);
    stats_.num_running = static_cast<int>(sched.num_running());
    stats_.num_waiting = static_cast<int>(sched.num_waiting());
    stats_.num_preemptions_total = static_cast<int64_t>(sched.num_preemptions());
    stats_.kv_cache_num_blocks_used = blocks.num_blocks() - blocks.num_free_blocks();
    stats_.kv_cache_usage =
        blocks.num_blocks() > 0 ? static_cast<double>(stats_.kv_cache_num_blocks_used) / blocks.num_blocks() : 0.0;
  }
}

}  // namespace llmctl::server
