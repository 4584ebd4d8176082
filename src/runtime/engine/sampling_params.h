// Per-request generation settings, as the OpenAI API and `llmctl generate`
// expose them. validate() names the offending field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace llmctl::engine {

struct SamplingParams {
  int n = 1;                     // completions per request, each its own sequence
  double temperature = 1.0;      // 0: greedy
  double top_p = 1.0;
  int top_k = -1;                // -1 or 0: all tokens
  double min_p = 0.0;
  double repetition_penalty = 1.0;  // >1 discourages tokens of prompt and output
  double presence_penalty = 0.0;    // OpenAI: subtracted once per token seen in the output
  double frequency_penalty = 0.0;   // OpenAI: subtracted per occurrence in the output
  std::optional<uint64_t> seed;     // sequence i of the request uses seed + i
  std::vector<std::string> stop;    // stop strings (need a detokenizer)
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  bool include_stop_str_in_output = false;
  int min_tokens = 0;
  int max_tokens = 16;
  std::optional<int> logprobs;      // number of top logprobs per token (0: only the sampled one)

  Status validate() const;
};

}  // namespace llmctl::engine
