#include "runtime/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "kernels/kernels.h"

namespace llmctl::engine {
namespace {

bool is_greedy(const SamplingParams& p) { return p.temperature == 0.0 || p.top_k == 1; }

}  // namespace

std::vector<float> Sampler::log_softmax(const float* x, int64_t n) {
  const float mx = *std::max_element(x, x + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - mx);
  const double log_sum = std::log(sum);
  std::vector<float> out(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(static_cast<double>(x[i]) - mx - log_sum);
  return out;
}

void Sampler::process_logits(float* logits, int64_t vocab, const Sequence& seq, const std::vector<int32_t>& eos_ids) {
  const SamplingParams& p = *seq.params;
  if (p.repetition_penalty != 1.0) {
    const auto rp = static_cast<float>(p.repetition_penalty);
    std::vector<bool> seen(static_cast<std::size_t>(vocab), false);
    for (int32_t t : seq.token_ids) {
      if (t < 0 || t >= vocab || seen[t]) continue;
      seen[t] = true;
      logits[t] = logits[t] > 0 ? logits[t] / rp : logits[t] * rp;
    }
  }
  if (p.presence_penalty != 0.0 || p.frequency_penalty != 0.0) {
    std::unordered_map<int32_t, int> counts;
    for (int32_t i = seq.num_prompt_tokens; i < seq.num_tokens(); ++i) ++counts[seq.token_ids[i]];
    for (const auto& [t, c] : counts) {
      if (t < 0 || t >= vocab) continue;
      logits[t] = static_cast<float>(logits[t] - (p.frequency_penalty * c + p.presence_penalty));
    }
  }
  if (seq.num_output_tokens() < p.min_tokens) {
    // Under ignore_eos, eos is an ordinary token and stays drawable.
    for (int32_t t : p.ignore_eos ? std::vector<int32_t>{} : eos_ids) {
      if (t >= 0 && t < vocab) logits[t] = -INFINITY;
    }
    for (int32_t t : p.stop_token_ids) {
      if (t >= 0 && t < vocab) logits[t] = -INFINITY;
    }
  }
}

std::vector<Candidate> Sampler::distribution(const float* logits, int64_t vocab, const SamplingParams& p) {
  const double inv_t = 1.0 / p.temperature;
  std::vector<int32_t> order(static_cast<std::size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  // Candidates sorted by logit, descending; ties by id for determinism.
  auto by_logit = [&](int32_t a, int32_t b) { return logits[a] != logits[b] ? logits[a] > logits[b] : a < b; };
  int64_t keep = vocab;
  if (p.top_k > 0 && p.top_k < vocab) {
    keep = p.top_k;
    std::partial_sort(order.begin(), order.begin() + keep, order.end(), by_logit);
  } else {
    std::sort(order.begin(), order.end(), by_logit);
  }
  order.resize(static_cast<std::size_t>(keep));
  // Masked tokens (-inf, e.g. eos under min_tokens) can never be drawn.
  while (order.size() > 1 && std::isinf(logits[order.back()]) && logits[order.back()] < 0) order.pop_back();
  std::vector<double> probs(order.size());
  const double mx = logits[order[0]];
  double sum = 0;
  for (std::size_t i = 0; i < order.size(); ++i) {
    probs[i] = std::exp((static_cast<double>(logits[order[i]]) - mx) * inv_t);
    sum += probs[i];
  }
  for (double& x : probs) x /= sum;
  std::size_t n = probs.size();
  if (p.top_p < 1.0) {
    // Keep the smallest prefix whose mass reaches top_p (a token is dropped
    // when the tokens before it already hold top_p), as TopPLogitsWarper.
    double cum = 0;
    std::size_t i = 0;
    for (; i < n; ++i) {
      cum += probs[i];
      if (cum >= p.top_p) break;
    }
    n = std::min(n, i + 1);
  }
  if (p.min_p > 0.0) {
    // A ratio to the top probability, so renormalisation after top_k/top_p
    // does not change which tokens pass.
    const double threshold = p.min_p * probs[0];
    std::size_t i = 1;
    while (i < n && probs[i] >= threshold) ++i;
    n = i;
  }
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) total += probs[i];
  std::vector<Candidate> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = {order[i], probs[i] / total};
  return out;
}

bool Sampler::plain_greedy(const Sequence& seq, const std::vector<int32_t>& eos_ids) {
  const SamplingParams& p = *seq.params;
  if (!is_greedy(p) || p.logprobs.has_value()) return false;
  if (p.repetition_penalty != 1.0 || p.presence_penalty != 0.0 || p.frequency_penalty != 0.0) return false;
  const bool masking = seq.num_output_tokens() < p.min_tokens &&
                       ((!p.ignore_eos && !eos_ids.empty()) || !p.stop_token_ids.empty());
  return !masking;
}

SampleResult Sampler::sample(const float* raw, int64_t vocab, Sequence& seq, const std::vector<int32_t>& eos_ids) {
  const SamplingParams& p = *seq.params;
  SampleResult result;
  std::vector<float> logits(raw, raw + vocab);
  process_logits(logits.data(), vocab, seq, eos_ids);

  if (is_greedy(p)) {
    // First maximum, as torch.argmax.
    result.token_id = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  } else {
    // The draw is sample_rows' (its host twin): the same uniform picks the
    // same token whichever path a step takes, so a seeded request does not
    // depend on whether a neighbour in its batch asks for logprobs.
    kernels::SamplingRowParams row;
    row.temperature = p.temperature;
    row.uniform = Sampler::uniform01(seq.rng);
    row.top_p = p.top_p;
    row.min_p = p.min_p;
    row.top_k = p.top_k;
    kernels::SamplingRows rows;
    rows.rows = 1;
    rows.vocab = vocab;
    rows.params = &row;
    kernels::Backend::sample_rows_on_host(&result.token_id, logits.data(), rows);
  }

  if (p.logprobs.has_value()) {
    const std::vector<float> lp = log_softmax(raw, vocab);
    result.logprob = lp[result.token_id];
    const int k = std::min<int>(*p.logprobs, static_cast<int>(vocab));
    if (k > 0) {
      std::vector<int32_t> idx(static_cast<std::size_t>(vocab));
      std::iota(idx.begin(), idx.end(), 0);
      std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                        [&](int32_t a, int32_t b) { return lp[a] != lp[b] ? lp[a] > lp[b] : a < b; });
      for (int i = 0; i < k; ++i) result.top_logprobs.emplace_back(idx[i], lp[idx[i]]);
    }
  }
  return result;
}

}  // namespace llmctl::engine
