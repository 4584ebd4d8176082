// GenerationBackend: what the HTTP server needs from an engine, and nothing
// more. The server turns OpenAI requests into GenerationRequests (token ids
// and sampling settings, one request per choice) and turns the events a
// backend reports back into JSON and SSE.
//
// Threading contract (STYLE habit 3):
//   - submit(), cancel(), stats() and state() may be called from any thread.
//   - The backend owns its engine and KV cache on its own thread(s). It calls
//     a request's sink from that thread, in order, never two calls at once for
//     one request; the sink must not block (the server posts to its io thread).
//   - Every accepted request gets exactly one final event (finish_reason !=
//     kNone), also when it is cancelled (kAbort) or the engine fails (kError).
//     No event follows the final one.
//   - cancel() of an unknown or finished id is a no-op. After cancel() the
//     request's KV blocks are freed before its final event is sent.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace llmctl::server {

// Sampling settings the backend applies itself. Stop strings are not here:
// the server checks them on detokenized text and cancels the request (as
// vLLM's front end does), so every backend gets them for free.
struct SamplingOptions {
  double temperature = 1.0;  // 0: greedy
  double top_p = 1.0;
  int top_k = -1;  // -1: all tokens
  double min_p = 0.0;
  std::optional<uint64_t> seed;
  double presence_penalty = 0.0;
  double frequency_penalty = 0.0;
  double repetition_penalty = 1.0;
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  int min_tokens = 0;
  int max_tokens = 16;
  std::optional<int> logprobs;  // top logprobs per token to report (0: only the sampled token's)
};

struct GenerationRequest {
  uint64_t request_id = 0;  // chosen by the server, unique per process
  std::vector<int32_t> prompt_ids;
  SamplingOptions sampling;
};

enum class FinishReason { kNone, kStop, kLength, kAbort, kError };
std::string_view finish_reason_name(FinishReason reason);  // "stop", "length", "abort", "error"; "" for kNone

struct TokenLogprob {
  int32_t token_id = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // best first; logprobs entries
};

struct GenerationEvent {
  std::vector<int32_t> new_token_ids;
  std::vector<TokenLogprob> logprobs;  // one per new token when requested
  FinishReason finish_reason = FinishReason::kNone;
  // With kStop: the stop token id (eos or a stop_token_ids entry), if any.
  std::optional<int32_t> stop_token_id;
  std::string error;  // with kError
  int32_t num_cached_prompt_tokens = 0;
};

using EventSink = std::function<void(GenerationEvent)>;

struct BackendStats {
  int num_running = 0;
  int num_waiting = 0;
  double kv_cache_usage = 0;  // 0..1
  int64_t num_preemptions_total = 0;
  int64_t kv_cache_num_blocks_used = 0;
};

enum class BackendState { kLoading, kReady, kDead };

class GenerationBackend {
 public:
  virtual ~GenerationBackend() = default;
  // Queues a request. INVALID_ARGUMENT (naming the field) when the engine
  // refuses the settings; the sink is then never called.
  virtual Status submit(GenerationRequest request, EventSink sink) = 0;
  virtual void cancel(uint64_t request_id) = 0;
  virtual BackendStats stats() const = 0;
  virtual BackendState state() const = 0;
  // Why the backend is kDead, when it knows ("tensor-parallel rank 1 on node
  // lf002 ... exited"); /health and refused requests say it.
  virtual std::string failure() const { return {}; }
};

}  // namespace llmctl::server
