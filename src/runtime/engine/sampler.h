// Turns one row of logits into the next token of a sequence: penalties,
// min_tokens masking, then greedy or temperature / top_k / top_p / min_p
// sampling with the sequence's own RNG (so a seeded sequence draws the same
// tokens whatever it is batched with). Logprobs are those of the model's raw
// distribution (log_softmax of the unprocessed logits). Stateless.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/engine/sequence.h"

namespace llmctl::engine {

struct SampleResult {
  int32_t token_id = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top_logprobs;  // when params->logprobs > 0
};

class Sampler {
 public:
  // logits: [vocab]; eos_ids are masked while fewer than min_tokens are out.
  static SampleResult sample(const float* logits, int64_t vocab, Sequence& seq, const std::vector<int32_t>& eos_ids);
};

}  // namespace llmctl::engine
