// The host twin of sample_rows (kernels.h gives the semantics): the CPU
// backend's op and the reference the CUDA kernel is tested against. It
// computes the same thresholds by sorting where the kernel selects by radix.
#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "kernels/kernels.h"

namespace llmctl::kernels {
namespace {

void apply_penalties(float* x, int64_t vocab, const SamplingRowParams& p, const SamplingRows& s) {
  const auto rp = static_cast<float>(p.repetition_penalty);
  const bool additive = p.presence_penalty != 0.0 || p.frequency_penalty != 0.0;
  for (int32_t e = p.seen_begin; e < p.seen_end; ++e) {
    const int32_t t = s.seen_tokens[e];
    if (t < 0 || t >= vocab) continue;
    if (p.repetition_penalty != 1.0) x[t] = x[t] > 0 ? x[t] / rp : x[t] * rp;
    const int32_t c = s.seen_output_counts[e];
    if (additive && c > 0) {
      const double penalty = p.frequency_penalty * c + p.presence_penalty;
      x[t] = static_cast<float>(static_cast<double>(x[t]) - penalty);
    }
  }
  for (int32_t e = p.banned_begin; e < p.banned_end; ++e) {
    const int32_t t = s.banned_tokens[e];
    if (t >= 0 && t < vocab) x[t] = -INFINITY;
  }
}

int32_t draw(const float* x, int64_t vocab, const SamplingRowParams& p) {
  float mx = -INFINITY;
  int64_t first_max = 0;
  bool any = false;
  for (int64_t i = 0; i < vocab; ++i) {
    if (x[i] != x[i]) continue;
    if (!any || x[i] > mx) {
      mx = x[i];
      first_max = i;
      any = true;
    }
  }
  // Every token banned (or NaN): nothing to draw from, answer as greedy does.
  if (!any || std::isinf(mx)) return static_cast<int32_t>(first_max);
  const double inv_t = 1.0 / p.temperature;
  auto weight = [&](float v) { return std::exp((static_cast<double>(v) - mx) * inv_t); };

  std::vector<float> values;
  values.reserve(static_cast<std::size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) {
    if (x[i] == x[i]) values.push_back(x[i]);
  }
  float cutoff = -INFINITY;
  if (p.top_k > 0 && static_cast<std::size_t>(p.top_k) < values.size()) {
    std::nth_element(values.begin(), values.begin() + (p.top_k - 1), values.end(), std::greater<float>());
    cutoff = values[static_cast<std::size_t>(p.top_k - 1)];
  }
  if (p.top_p < 1.0) {
    std::vector<float> kept;
    for (float v : values) {
      if (v >= cutoff) kept.push_back(v);
    }
    std::sort(kept.begin(), kept.end(), std::greater<float>());
    double mass = 0;
    for (float v : kept) mass += weight(v);
    const double target = p.top_p * mass;
    double cum = 0;
    for (float v : kept) {
      cum += weight(v);
      if (cum >= target) {
        cutoff = std::max(cutoff, v);
        break;
      }
    }
  }
  auto candidate = [&](int64_t i, double w) { return x[i] == x[i] && x[i] >= cutoff && (p.min_p <= 0 || w >= p.min_p); };
  double total = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    const double w = weight(x[i]);
    if (candidate(i, w)) total += w;
  }
  const double target = p.uniform * total;
  double cum = 0;
  int64_t last = first_max;
  for (int64_t i = 0; i < vocab; ++i) {
    const double w = weight(x[i]);
    if (!candidate(i, w) || w <= 0) continue;
    cum += w;
    if (cum > target) return static_cast<int32_t>(i);
    last = i;
  }
  return static_cast<int32_t>(last);  // rounding left the sum short of the target
}

}  // namespace

void Backend::sample_rows_on_host(int32_t* ids, float* logits, const SamplingRows& s) {
  for (int64_t r = 0; r < s.rows; ++r) {
    const SamplingRowParams& p = s.params[r];
    float* x = logits + r * s.vocab;
    apply_penalties(x, s.vocab, p, s);
    if (p.temperature > 0) {
      ids[r] = draw(x, s.vocab, p);
    } else {
      argmax_rows_on_host(ids + r, x, 1, s.vocab);
    }
  }
}

}  // namespace llmctl::kernels
