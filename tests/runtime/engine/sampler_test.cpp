// The Sampler on its own, against tests/runtime/engine/sampler_reference.json
// (transformers' logits processors and warpers, the OpenAI penalty formula,
// torch log_softmax; made by tools/engine_fixtures/make_sampler_reference.py)
// and against hand-computed expectations.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "engine_test_util.h"
#include "runtime/engine/sampler.h"
#include "runtime/engine/sampling_batch.h"

using namespace llmctl::engine;
using namespace llmctl::engine::testing;

namespace {

Sequence sequence_of(const nlohmann::json& c, const SamplingParams* p) {
  Sequence seq;
  seq.params = p;
  seq.token_ids = ids_of(c["prompt_ids"]);
  seq.num_prompt_tokens = seq.num_tokens();
  for (int32_t t : ids_of(c["output_ids"])) seq.token_ids.push_back(t);
  return seq;
}

std::vector<float> floats_of(const nlohmann::json& j) {
  std::vector<float> v;
  for (const auto& x : j) v.push_back(x.is_string() ? -INFINITY : x.get<float>());
  return v;
}

}  // namespace

TEST_CASE("sampler: penalties and the min_tokens mask equal transformers / OpenAI") {
  const nlohmann::json ref = sampler_reference();
  for (const auto& c : ref["cases"]) {
    CAPTURE(c["name"].get<std::string>());
    const SamplingParams p = reference_params(c["params"]);
    Sequence seq = sequence_of(c, &p);
    std::vector<float> logits = floats_of(c["logits"]);
    const std::vector<float> want = floats_of(c["processed"]);
    Sampler::process_logits(logits.data(), static_cast<int64_t>(logits.size()), seq, ids_of(c["eos_ids"]));
    REQUIRE(logits.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      CAPTURE(i);
      if (std::isinf(want[i])) {
        CHECK(std::isinf(logits[i]));
        CHECK(logits[i] < 0);
      } else {
        CHECK(logits[i] == doctest::Approx(want[i]).epsilon(1e-6));
      }
    }
  }
}

TEST_CASE("sampler: the sampled distribution equals transformers' warpers") {
  int checked = 0;
  const nlohmann::json ref = sampler_reference();
  for (const auto& c : ref["cases"]) {
    if (!c.contains("probs")) continue;
    CAPTURE(c["name"].get<std::string>());
    const SamplingParams p = reference_params(c["params"]);
    Sequence seq = sequence_of(c, &p);
    std::vector<float> logits = floats_of(c["logits"]);
    const auto vocab = static_cast<int64_t>(logits.size());
    Sampler::process_logits(logits.data(), vocab, seq, ids_of(c["eos_ids"]));
    const auto want = c["probs"].get<std::vector<double>>();
    std::vector<double> got(want.size(), 0.0);
    double prev = 2;
    for (const Candidate& cand : Sampler::distribution(logits.data(), vocab, p)) {
      CHECK(cand.prob <= prev);  // most likely first
      prev = cand.prob;
      got[static_cast<std::size_t>(cand.token_id)] = cand.prob;
    }
    for (std::size_t i = 0; i < want.size(); ++i) {
      CAPTURE(i);
      CHECK((got[i] > 0) == (want[i] > 0));  // the same support
      CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-5));
    }
    ++checked;
  }
  CHECK(checked >= 6);
}

TEST_CASE("sampler: draws follow the distribution, stay in its support and are seeded") {
  const auto ref = sampler_reference();
  for (const auto& c : ref["cases"]) {
    const std::string name = c["name"];
    if (name != "top_p" && name != "min_p_hot" && name != "top_k_top_p_min_p") continue;
    CAPTURE(name);
    const SamplingParams p = reference_params(c["params"]);
    Sequence seq = sequence_of(c, &p);
    seq.rng.seed(42);
    const std::vector<float> logits = floats_of(c["logits"]);
    const auto want = c["probs"].get<std::vector<double>>();
    const int kDraws = 20000;
    std::map<int32_t, int> counts;
    for (int i = 0; i < kDraws; ++i) ++counts[Sampler::sample(logits.data(), static_cast<int64_t>(logits.size()), seq, {}).token_id];
    for (const auto& [token, count] : counts) {
      CAPTURE(token);
      CHECK(want[static_cast<std::size_t>(token)] > 0);
    }
    for (std::size_t t = 0; t < want.size(); ++t) {
      if (want[t] == 0) continue;
      CAPTURE(t);
      const double expected = want[t] * kDraws;
      const double sigma = std::sqrt(kDraws * want[t] * (1 - want[t]));
      CHECK(std::abs(counts[static_cast<int32_t>(t)] - expected) <= 5 * sigma + 1);
    }
    // The same seed draws the same tokens.
    Sequence a = sequence_of(c, &p), b = sequence_of(c, &p);
    a.rng.seed(7);
    b.rng.seed(7);
    for (int i = 0; i < 50; ++i) {
      CHECK(Sampler::sample(logits.data(), static_cast<int64_t>(logits.size()), a, {}).token_id ==
            Sampler::sample(logits.data(), static_cast<int64_t>(logits.size()), b, {}).token_id);
    }
  }
}

TEST_CASE("sampler: a seeded sequence draws the same tokens through Sampler::sample and sample_rows") {
  // A step samples on the host (Sampler::sample) when a row asks for
  // logprobs and through sample_rows otherwise; which one a request meets
  // depends on its neighbours, so both must turn a seed into the same tokens.
  const auto ref = sampler_reference();
  int checked = 0;
  for (const auto& c : ref["cases"]) {
    CAPTURE(c["name"].get<std::string>());
    SamplingParams p = reference_params(c["params"]);
    if (p.temperature == 0.0 || p.top_k == 1) continue;
    const std::vector<float> logits = floats_of(c["logits"]);
    const auto vocab = static_cast<int64_t>(logits.size());
    const std::vector<int32_t> eos = ids_of(c["eos_ids"]);
    Sequence host = sequence_of(c, &p), rows = sequence_of(c, &p);
    host.rng.seed(99);
    rows.rng.seed(99);
    int differing_draws = 0;
    int32_t first = -1;
    for (int i = 0; i < 200; ++i) {
      CAPTURE(i);
      const int32_t a = Sampler::sample(logits.data(), vocab, host, eos).token_id;
      SamplingBatch batch;
      batch.add(rows, eos);
      std::vector<float> x = logits;
      int32_t b = -1;
      llmctl::kernels::Backend::sample_rows_on_host(&b, x.data(), batch.host_view(vocab));
      REQUIRE(a == b);
      if (first < 0) first = a;
      differing_draws += a != first;
    }
    CHECK(differing_draws > 0);  // the draws really vary, so agreement means something
    ++checked;
  }
  CHECK(checked >= 3);
}

TEST_CASE("sampler: logprobs and top logprobs are log_softmax of the raw logits") {
  const nlohmann::json ref = sampler_reference();
  for (const auto& c : ref["cases"]) {
    CAPTURE(c["name"].get<std::string>());
    SamplingParams p = reference_params(c["params"]);
    p.logprobs = 5;
    Sequence seq = sequence_of(c, &p);
    seq.rng.seed(3);
    const std::vector<float> logits = floats_of(c["logits"]);
    const auto want = c["log_softmax"].get<std::vector<double>>();
    const SampleResult r = Sampler::sample(logits.data(), static_cast<int64_t>(logits.size()), seq, {});
    CHECK(r.logprob == doctest::Approx(want[static_cast<std::size_t>(r.token_id)]).epsilon(1e-5));
    // Hand-made expectation: the 5 largest of the reference, descending.
    std::vector<std::pair<double, int32_t>> sorted;
    for (std::size_t i = 0; i < want.size(); ++i) sorted.emplace_back(want[i], static_cast<int32_t>(i));
    std::sort(sorted.rbegin(), sorted.rend());
    REQUIRE(r.top_logprobs.size() == 5);
    for (int i = 0; i < 5; ++i) {
      CHECK(r.top_logprobs[i].first == sorted[i].second);
      CHECK(r.top_logprobs[i].second == doctest::Approx(sorted[i].first).epsilon(1e-5));
    }
  }
  // logprobs = 0: only the sampled token's.
  SamplingParams p;
  p.temperature = 0;
  p.logprobs = 0;
  Sequence seq;
  seq.params = &p;
  seq.token_ids = {1};
  seq.num_prompt_tokens = 1;
  const std::vector<float> logits{0.0f, std::log(3.0f), 0.0f};  // probabilities 1/5, 3/5, 1/5
  const SampleResult r = Sampler::sample(logits.data(), 3, seq, {});
  CHECK(r.token_id == 1);
  CHECK(r.logprob == doctest::Approx(std::log(0.6)).epsilon(1e-6));
  CHECK(r.top_logprobs.empty());
}

TEST_CASE("sampler: greedy takes the first maximum of the processed logits; min_tokens masks eos and stop ids") {
  SamplingParams p;
  p.temperature = 0;
  p.min_tokens = 2;
  p.stop_token_ids = {4};
  Sequence seq;
  seq.params = &p;
  seq.token_ids = {1, 9};
  seq.num_prompt_tokens = 2;
  //                          0     1     2(eos) 3     4(stop) 5
  const std::vector<float> logits{0.5f, 1.0f, 9.0f, 3.0f, 8.0f, 3.0f};
  const std::vector<int32_t> eos{2};
  CHECK(Sampler::sample(logits.data(), 6, seq, eos).token_id == 3);  // eos, stop masked; first of the tie 3/5
  seq.token_ids.push_back(3);
  CHECK(Sampler::sample(logits.data(), 6, seq, eos).token_id == 3);  // 1 of 2 out: still masked
  seq.token_ids.push_back(3);
  CHECK(Sampler::sample(logits.data(), 6, seq, eos).token_id == 2);  // min_tokens reached

  // Random sampling never draws a masked token, even when it dominates.
  SamplingParams hot;
  hot.temperature = 1.0;
  hot.min_tokens = 3;
  Sequence s2;
  s2.params = &hot;
  s2.token_ids = {1};
  s2.num_prompt_tokens = 1;
  s2.rng.seed(1);
  const std::vector<float> peaked{0.0f, 0.0f, 50.0f, 0.0f};
  for (int i = 0; i < 200; ++i) CHECK(Sampler::sample(peaked.data(), 4, s2, eos).token_id != 2);

  // top_k = 1 is greedy whatever the temperature.
  SamplingParams k1;
  k1.temperature = 5.0;
  k1.top_k = 1;
  Sequence s3;
  s3.params = &k1;
  s3.token_ids = {1};
  s3.num_prompt_tokens = 1;
  for (int i = 0; i < 20; ++i) CHECK(Sampler::sample(logits.data(), 6, s3, {}).token_id == 2);
}

// The device may pick a token for a row only when sample() would return the
// raw row's first maximum; every case that sample() treats differently must
// say no. Checked against sample() itself on rows where the first maximum
// and the processed choice differ.
TEST_CASE("plain_greedy admits exactly the rows whose choice is the raw first maximum") {
  const std::vector<int32_t> eos = {2};
  // Token 2 (eos) is the maximum; token 1 the runner-up; token 0 was in the output.
  const std::vector<float> row = {3.0f, 4.0f, 5.0f, -1.0f};
  auto check = [&](SamplingParams p, int output_tokens, bool want) {
    Sequence seq;
    seq.params = &p;
    seq.token_ids = {3, 3};
    seq.num_prompt_tokens = 2;
    for (int i = 0; i < output_tokens; ++i) seq.token_ids.push_back(0);
    CHECK(Sampler::plain_greedy(seq, eos) == want);
    if (want) CHECK(Sampler::sample(row.data(), 4, seq, eos).token_id == 2);
  };
  SamplingParams greedy;
  greedy.temperature = 0.0;
  greedy.max_tokens = 10;
  check(greedy, 1, true);
  SamplingParams top1 = greedy;
  top1.temperature = 0.8;
  top1.top_k = 1;
  check(top1, 1, true);
  SamplingParams sampled = greedy;
  sampled.temperature = 0.7;
  check(sampled, 1, false);
  SamplingParams with_logprobs = greedy;
  with_logprobs.logprobs = 0;
  check(with_logprobs, 1, false);
  SamplingParams penalised = greedy;
  penalised.repetition_penalty = 1.2;
  check(penalised, 1, false);
  SamplingParams presence = greedy;
  presence.presence_penalty = 0.5;
  check(presence, 1, false);
  SamplingParams frequency = greedy;
  frequency.frequency_penalty = 0.5;
  check(frequency, 1, false);
  SamplingParams min_tokens = greedy;
  min_tokens.min_tokens = 3;
  check(min_tokens, 1, false);  // eos masked: sample() picks token 1
  check(min_tokens, 3, true);   // reached: nothing masked
  SamplingParams ignore = min_tokens;
  ignore.ignore_eos = true;
  check(ignore, 1, true);  // under ignore_eos eos is not masked
  ignore.stop_token_ids = {1};
  check(ignore, 1, false);  // stop ids are masked until min_tokens
}
