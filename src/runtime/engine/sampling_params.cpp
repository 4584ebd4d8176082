#include "runtime/engine/sampling_params.h"

namespace llmctl::engine {

Status SamplingParams::validate() const {
  if (n < 1) return Status::invalid_argument("n must be at least 1");
  if (temperature < 0) return Status::invalid_argument("temperature must be >= 0");
  if (!(top_p > 0 && top_p <= 1)) return Status::invalid_argument("top_p must be in (0, 1]");
  if (top_k < -1) return Status::invalid_argument("top_k must be -1 (all) or positive");
  if (min_p < 0 || min_p > 1) return Status::invalid_argument("min_p must be in [0, 1]");
  if (repetition_penalty <= 0) return Status::invalid_argument("repetition_penalty must be > 0");
  if (presence_penalty < -2 || presence_penalty > 2) return Status::invalid_argument("presence_penalty must be in [-2, 2]");
  if (frequency_penalty < -2 || frequency_penalty > 2) return Status::invalid_argument("frequency_penalty must be in [-2, 2]");
  if (max_tokens < 1) return Status::invalid_argument("max_tokens must be at least 1");
  if (min_tokens < 0 || min_tokens > max_tokens) return Status::invalid_argument("min_tokens must be in [0, max_tokens]");
  if (logprobs && (*logprobs < 0 || *logprobs > 20)) return Status::invalid_argument("logprobs must be in [0, 20]");
  for (const auto& s : stop) {
    if (s.empty()) return Status::invalid_argument("stop strings must not be empty");
  }
  return Status::ok();
}

}  // namespace llmctl::engine
