#include "runtime/engine/sampling_batch.h"

#include <map>

#include "runtime/engine/sampler.h"

namespace llmctl::engine {

bool SamplingBatch::supports(const Sequence& seq) { return !seq.params->logprobs.has_value(); }

void SamplingBatch::add(Sequence& seq, const std::vector<int32_t>& eos_ids) {
  const SamplingParams& p = *seq.params;
  kernels::SamplingRowParams row;
  const bool greedy = p.temperature == 0.0 || p.top_k == 1;
  if (!greedy) {
    row.temperature = p.temperature;
    row.uniform = Sampler::uniform01(seq.rng);
  }
  row.top_p = p.top_p;
  row.min_p = p.min_p;
  row.top_k = p.top_k;
  row.repetition_penalty = p.repetition_penalty;
  row.presence_penalty = p.presence_penalty;
  row.frequency_penalty = p.frequency_penalty;

  row.seen_begin = static_cast<int32_t>(seen_tokens.size());
  const bool repetition = p.repetition_penalty != 1.0;
  if (repetition || p.presence_penalty != 0.0 || p.frequency_penalty != 0.0) {
    // Ordered, so a row's lists (and the device's work) are the same run to run.
    std::map<int32_t, int32_t> output_counts;
    if (repetition) {
      for (int32_t i = 0; i < seq.num_prompt_tokens; ++i) output_counts.try_emplace(seq.token_ids[i], 0);
    }
    for (int32_t i = seq.num_prompt_tokens; i < seq.num_tokens(); ++i) ++output_counts[seq.token_ids[i]];
    for (const auto& [token, count] : output_counts) {
      seen_tokens.push_back(token);
      seen_output_counts.push_back(count);
    }
  }
  row.seen_end = static_cast<int32_t>(seen_tokens.size());

  row.banned_begin = static_cast<int32_t>(banned_tokens.size());
  if (seq.num_output_tokens() < p.min_tokens) {
    // Under ignore_eos, eos is an ordinary token and stays drawable.
    if (!p.ignore_eos) banned_tokens.insert(banned_tokens.end(), eos_ids.begin(), eos_ids.end());
    banned_tokens.insert(banned_tokens.end(), p.stop_token_ids.begin(), p.stop_token_ids.end());
  }
  row.banned_end = static_cast<int32_t>(banned_tokens.size());
  params.push_back(row);
}

kernels::SamplingRows SamplingBatch::host_view(int64_t vocab) const {
  kernels::SamplingRows rows;
  rows.rows = this->rows();
  rows.vocab = vocab;
  rows.params = params.data();
  rows.seen_tokens = seen_tokens.data();
  rows.seen_output_counts = seen_output_counts.data();
  rows.banned_tokens = banned_tokens.data();
  return rows;
}

}  // namespace llmctl::engine
