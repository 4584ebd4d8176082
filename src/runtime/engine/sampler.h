// Turns one row of logits into the next token of a sequence, in three steps
// that are public so tests can check each against a reference:
//   process_logits: repetition penalty (prompt and output tokens), then
//     presence / frequency penalties (output tokens, OpenAI's definition),
//     then stop token ids and (unless ignore_eos) eos ids masked while fewer
//     than min_tokens are out;
//   distribution: temperature, top_k, top_p, min_p (transformers' order) ->
//     the candidates sampling draws from and their probabilities;
//   sample: greedy (first maximum) or one draw from the sequence's own RNG
//     (so a seeded sequence draws the same tokens whatever it is batched with).
// Logprobs are those of the model's raw distribution (log_softmax of the
// unprocessed logits), as vLLM reports by default. Stateless.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "runtime/engine/sequence.h"

namespace llmctl::engine {

struct SampleResult {
  int32_t token_id = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top_logprobs;  // when params->logprobs > 0, most likely first
};

// One candidate token and the probability of drawing it.
struct Candidate {
  int32_t token_id = 0;
  double prob = 0;
};

class Sampler {
 public:
  // logits: [vocab]; eos_ids are masked while fewer than min_tokens are out.
  static SampleResult sample(const float* logits, int64_t vocab, Sequence& seq, const std::vector<int32_t>& eos_ids);

  // True when sample() would return the first maximum of the raw logits and
  // nothing else (greedy, no penalties, no logprobs, no eos/stop mask in
  // force): the device can then pick the token without the host seeing the
  // row (Backend::argmax_rows).
  static bool plain_greedy(const Sequence& seq, const std::vector<int32_t>& eos_ids);

  // Applies penalties and the min_tokens mask to logits[vocab] in place.
  static void process_logits(float* logits, int64_t vocab, const Sequence& seq, const std::vector<int32_t>& eos_ids);

  // For temperature > 0: the tokens that may be drawn from processed logits,
  // most likely first (ties by id), with probabilities summing to 1.
  static std::vector<Candidate> distribution(const float* logits, int64_t vocab, const SamplingParams& params);

  // log_softmax(logits[vocab]), accumulated in double.
  static std::vector<float> log_softmax(const float* logits, int64_t vocab);

  // A uniform double in [0, 1) from 53 bits of rng: a sampling row's draw
  // (portable, unlike std::uniform_real_distribution whose algorithm is
  // unspecified).
  static double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }
};

}  // namespace llmctl::engine
