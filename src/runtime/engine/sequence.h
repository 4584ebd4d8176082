// One sequence being generated: its tokens (prompt + output), how far its KV
// cache is computed, its blocks, its sampling state. Owned by the Engine and
// touched only on the engine thread.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "runtime/engine/sampling_params.h"

namespace llmctl::engine {

enum class SequenceStatus { kWaiting, kRunning, kFinished };

enum class FinishReason { kNone, kStop, kLength, kAbort };
const char* finish_reason_name(FinishReason reason);  // "stop", "length", "abort", ""

struct TokenLogprob {
  int32_t token_id = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // most likely first
};

// The last token of a sequence whose step is still running, under async
// scheduling: the next step is scheduled around it and the sampled id
// replaces it before that step is launched. Never a vocabulary id.
inline constexpr int32_t kPendingToken = -1;

struct Sequence {
  uint64_t seq_id = 0;
  uint64_t request_id = 0;
  int index = 0;  // which of the request's n completions
  const SamplingParams* params = nullptr;  // owned by the request

  std::vector<int32_t> token_ids;  // prompt then output
  int32_t num_prompt_tokens = 0;
  // Tokens whose K/V are in the cache (valid through block_table). Reset to 0
  // by preemption; the next schedule recomputes (prefix-cache hits included).
  int32_t num_computed_tokens = 0;
  int32_t num_cached_tokens = 0;  // prefix-cache hits at the last admission
  std::vector<int32_t> block_table;
  // Full blocks already registered in the prefix cache, and their chain hash.
  int32_t num_hashed_blocks = 0;
  uint64_t last_block_hash = 0;

  SequenceStatus status = SequenceStatus::kWaiting;
  FinishReason finish_reason = FinishReason::kNone;
  std::optional<int32_t> stop_reason_token;
  std::mt19937_64 rng;  // per sequence: reproducible whatever else is batched

  std::string output_text;  // filled when the engine has a detokenizer
  std::vector<TokenLogprob> logprobs;
  double cumulative_logprob = 0;

  int32_t num_tokens() const { return static_cast<int32_t>(token_ids.size()); }
  int32_t num_output_tokens() const { return num_tokens() - num_prompt_tokens; }
  bool is_finished() const { return status == SequenceStatus::kFinished; }
  std::vector<int32_t> output_ids() const {
    return {token_ids.begin() + num_prompt_tokens, token_ids.end()};
  }
};

}  // namespace llmctl::engine
