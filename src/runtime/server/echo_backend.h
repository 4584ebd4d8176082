// EchoBackend: a deterministic stand-in engine for tests and demos. Each
// request "generates" its prompt's ids in reverse order (cycling), one token
// per step, a step every `step_interval`; it honours max_tokens, min_tokens,
// stop_token_ids, eos_ids / ignore_eos, max_num_seqs (the rest wait) and a
// block budget for its pretend KV cache (ceil((prompt + output) / block_size)
// blocks per running request), so /metrics shows real usage.
// Logprobs are fabricated but fixed: token k of a sequence has -0.25 * (k+1).
// Thread-safe as GenerationBackend requires; one internal thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/server/generation_backend.h"

namespace llmctl::server {

struct EchoBackendOptions {
  std::chrono::microseconds step_interval{1000};
  int max_num_seqs = 256;
  int block_size = 16;
  int num_blocks = 4096;
  std::vector<int32_t> eos_ids;
  std::vector<int32_t> skip_ids;  // never echoed (e.g. BOS)
};

class EchoBackend final : public GenerationBackend {
 public:
  explicit EchoBackend(EchoBackendOptions options);
  ~EchoBackend() override;
  Status submit(GenerationRequest request, EventSink sink) override;
  void cancel(uint64_t request_id) override;
  BackendStats stats() const override;
  BackendState state() const override { return state_; }
  void set_state(BackendState s) { state_ = s; }

 private:
  struct Active {
    GenerationRequest request;
    EventSink sink;
    std::vector<int32_t> source;  // reversed prompt
    int num_generated = 0;
  };
  void run();
  int blocks_for(const Active& a) const;

  EchoBackendOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Active> waiting_;        // guarded by mu_
  std::map<uint64_t, Active> running_;  // guarded by mu_
  std::vector<uint64_t> cancelled_;   // guarded by mu_
  int blocks_used_ = 0;               // guarded by mu_
  bool stop_ = false;                 // guarded by mu_
  std::atomic<BackendState> state_{BackendState::kReady};
  std::thread thread_;
};

}  // namespace llmctl::server
