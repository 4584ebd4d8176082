#include "runtime/server/echo_backend.h"

#include <algorithm>

#include <fmt/format.h>

namespace llmctl::server {

EchoBackend::EchoBackend(EchoBackendOptions options) : options_(std::move(options)) {
  thread_ = std::thread([this] { run(); });
}

EchoBackend::~EchoBackend() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Status EchoBackend::submit(GenerationRequest request, EventSink sink) {
  if (request.sampling.max_tokens < 1) return Status::invalid_argument("max_tokens must be at least 1");
  if (request.sampling.temperature < 0) return Status::invalid_argument("temperature must be at least 0");
  Active a;
  for (auto it = request.prompt_ids.rbegin(); it != request.prompt_ids.rend(); ++it) {
    if (std::find(options_.skip_ids.begin(), options_.skip_ids.end(), *it) == options_.skip_ids.end()) {
      a.source.push_back(*it);
    }
  }
  if (a.source.empty()) a.source.push_back(request.prompt_ids.empty() ? 0 : request.prompt_ids.front());
  a.request = std::move(request);
  a.sink = std::move(sink);
  {
    std::lock_guard<std::mutex> lock(mu_);
    waiting_.push_back(std::move(a));
  }
  cv_.notify_all();
  return Status::ok();
}

void EchoBackend::cancel(uint64_t request_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_.push_back(request_id);
  }
  cv_.notify_all();
}

int EchoBackend::blocks_for(const Active& a) const {
  int tokens = static_cast<int>(a.request.prompt_ids.size()) + a.num_generated + 1;
  return (tokens + options_.block_size - 1) / options_.block_size;
}

BackendStats EchoBackend::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  BackendStats s;
  s.num_running = static_cast<int>(running_.size());
  s.num_waiting = static_cast<int>(waiting_.size());
  s.kv_cache_num_blocks_used = blocks_used_;
  s.kv_cache_usage = static_cast<double>(blocks_used_) / options_.num_blocks;
  return s;
}

void EchoBackend::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (running_.empty()) {
      cv_.wait(lock, [this] { return stop_ || !waiting_.empty() || !cancelled_.empty(); });
    } else {
      cv_.wait_for(lock, options_.step_interval, [this] { return stop_ || !cancelled_.empty(); });
    }
    if (stop_) break;
    std::vector<std::pair<EventSink, GenerationEvent>> out;
    // Cancellations first: free the blocks, then report.
    for (uint64_t id : cancelled_) {
      auto it = running_.find(id);
      if (it != running_.end()) {
        blocks_used_ -= blocks_for(it->second);
        GenerationEvent ev;
        ev.finish_reason = FinishReason::kAbort;
        out.emplace_back(std::move(it->second.sink), std::move(ev));
        running_.erase(it);
        continue;
      }
      auto w = std::find_if(waiting_.begin(), waiting_.end(), [id](const Active& a) { return a.request.request_id == id; });
      if (w != waiting_.end()) {
        GenerationEvent ev;
        ev.finish_reason = FinishReason::kAbort;
        out.emplace_back(std::move(w->sink), std::move(ev));
        waiting_.erase(w);
      }
    }
    cancelled_.clear();
    // Admit waiting requests while there is room.
    while (!waiting_.empty() && static_cast<int>(running_.size()) < options_.max_num_seqs &&
           blocks_used_ + blocks_for(waiting_.front()) <= options_.num_blocks) {
      Active a = std::move(waiting_.front());
      waiting_.pop_front();
      blocks_used_ += blocks_for(a);
      uint64_t id = a.request.request_id;
      running_.emplace(id, std::move(a));
    }
    // One token for every running request.
    for (auto it = running_.begin(); it != running_.end();) {
      Active& a = it->second;
      const SamplingOptions& s = a.request.sampling;
      int before = blocks_for(a);
      int32_t token = a.source[static_cast<size_t>(a.num_generated) % a.source.size()];
      ++a.num_generated;
      blocks_used_ += blocks_for(a) - before;
      GenerationEvent ev;
      ev.new_token_ids.push_back(token);
      if (s.logprobs) {
        TokenLogprob lp{token, -0.25f * static_cast<float>(a.num_generated), {}};
        for (int k = 0; k < *s.logprobs; ++k) lp.top.emplace_back(token + k, lp.logprob - static_cast<float>(k));
        ev.logprobs.push_back(std::move(lp));
      }
      bool eos = !s.ignore_eos && std::find(options_.eos_ids.begin(), options_.eos_ids.end(), token) !=
                                      options_.eos_ids.end();
      bool stop_id = std::find(s.stop_token_ids.begin(), s.stop_token_ids.end(), token) != s.stop_token_ids.end();
      if ((eos || stop_id) && a.num_generated >= s.min_tokens) {
        ev.finish_reason = FinishReason::kStop;
        ev.stop_token_id = token;
      } else if (a.num_generated >= s.max_tokens) {
        ev.finish_reason = FinishReason::kLength;
      }
      if (ev.finish_reason != FinishReason::kNone) {
        blocks_used_ -= blocks_for(a);
        out.emplace_back(std::move(a.sink), std::move(ev));
        it = running_.erase(it);
      } else {
        out.emplace_back(a.sink, std::move(ev));
        ++it;
      }
    }
    // Sinks run without the lock (they only post, but need not know that).
    lock.unlock();
    for (auto& [sink, ev] : out) sink(std::move(ev));
    lock.lock();
  }
}

}  // namespace llmctl::server
