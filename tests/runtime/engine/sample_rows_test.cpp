// Sampling as the engine does it off the host (SamplingBatch from real
// Sequences, then the backend's sample_rows; here the CPU backend, whose op
// is the host twin the CUDA kernel is tested against): the penalised logits
// equal transformers / OpenAI (sampler_reference.json), the picks over a
// grid of uniforms reproduce transformers' warped distribution, and on a
// hand-computed 4-token row each setting moves the pick as it should.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>

#include "engine_test_util.h"
#include "kernels/kernels.h"
#include "runtime/engine/sampler.h"
#include "runtime/engine/sampling_batch.h"

using namespace llmctl::engine;
using namespace llmctl::engine::testing;
using llmctl::kernels::SamplingRowParams;

namespace {

Sequence sequence_of(const std::vector<int32_t>& prompt, const std::vector<int32_t>& output, const SamplingParams* p) {
  Sequence seq;
  seq.params = p;
  seq.token_ids = prompt;
  seq.num_prompt_tokens = seq.num_tokens();
  for (int32_t t : output) seq.token_ids.push_back(t);
  return seq;
}

std::vector<float> floats_of(const nlohmann::json& j) {
  std::vector<float> v;
  for (const auto& x : j) v.push_back(x.is_string() ? -INFINITY : x.get<float>());
  return v;
}

// Draws one token through the CPU backend's sample_rows, with `uniform`
// standing in for the sequence's draw; `logits` receives the penalised row.
int32_t pick(std::vector<float>& logits, Sequence& seq, const std::vector<int32_t>& eos_ids, double uniform) {
  SamplingBatch batch;
  batch.add(seq, eos_ids);
  if (batch.params[0].temperature > 0) batch.params[0].uniform = uniform;
  int32_t id = -1;
  auto cpu = llmctl::kernels::make_cpu_backend(1);
  cpu->sample_rows(&id, logits.data(), batch.host_view(static_cast<int64_t>(logits.size())));
  return id;
}

}  // namespace

TEST_CASE("sample_rows: penalties and the min_tokens mask equal transformers / OpenAI") {
  const nlohmann::json ref = sampler_reference();
  for (const auto& c : ref["cases"]) {
    CAPTURE(c["name"].get<std::string>());
    SamplingParams p = reference_params(c["params"]);
    p.temperature = 0;  // the processed row is what matters here
    Sequence seq = sequence_of(ids_of(c["prompt_ids"]), ids_of(c["output_ids"]), &p);
    std::vector<float> logits = floats_of(c["logits"]);
    const std::vector<float> want = floats_of(c["processed"]);
    const int32_t id = pick(logits, seq, ids_of(c["eos_ids"]), 0);
    REQUIRE(logits.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      CAPTURE(i);
      if (std::isinf(want[i])) {
        CHECK((std::isinf(logits[i]) && logits[i] < 0));
      } else {
        CHECK(logits[i] == doctest::Approx(want[i]).epsilon(1e-6));
      }
    }
    // Greedy: the first maximum of the processed row.
    int32_t first_max = 0;
    for (std::size_t i = 1; i < want.size(); ++i) {
      if (want[i] > want[static_cast<std::size_t>(first_max)]) first_max = static_cast<int32_t>(i);
    }
    CHECK(id == first_max);
  }
}

TEST_CASE("sample_rows: picks over a grid of uniforms reproduce transformers' warped distribution") {
  int checked = 0;
  const nlohmann::json ref = sampler_reference();
  for (const auto& c : ref["cases"]) {
    if (!c.contains("probs")) continue;
    CAPTURE(c["name"].get<std::string>());
    const SamplingParams p = reference_params(c["params"]);
    const std::vector<double> want = c["probs"].get<std::vector<double>>();
    // Uniforms at the centres of N equal cells: token t takes a share of
    // cells within 1/N of its probability (the draw is an inverse CDF).
    const int kCells = 4000;
    std::map<int32_t, int> hits;
    for (int i = 0; i < kCells; ++i) {
      Sequence seq = sequence_of(ids_of(c["prompt_ids"]), ids_of(c["output_ids"]), &p);
      std::vector<float> logits = floats_of(c["logits"]);
      ++hits[pick(logits, seq, ids_of(c["eos_ids"]), (i + 0.5) / kCells)];
    }
    for (std::size_t t = 0; t < want.size(); ++t) {
      CAPTURE(t);
      const double share = static_cast<double>(hits[static_cast<int32_t>(t)]) / kCells;
      CHECK(std::abs(share - want[t]) <= 1.0 / kCells + 1e-5);
      if (want[t] == 0) CHECK(hits[static_cast<int32_t>(t)] == 0);
    }
    ++checked;
  }
  CHECK(checked >= 6);
}

TEST_CASE("sample_rows: each setting moves the pick on a hand-computed row") {
  // Logits {1, 3, 2, 0}; at T = 1 the weights exp(x - 3) are
  // {e^-2, 1, e^-1, e^-3} = {0.1353, 1, 0.3679, 0.0498}, total 1.5530, so the
  // probabilities are {0.0871, 0.6439, 0.2369, 0.0321}. The pick walks ids in
  // order: cumulative {0.0871, 0.7310, 0.9679, 1}.
  const std::vector<float> row{1.0f, 3.0f, 2.0f, 0.0f};
  auto draw = [&](const SamplingParams& p, double u, const std::vector<int32_t>& prompt = {0},
                  const std::vector<int32_t>& output = {}, const std::vector<int32_t>& eos = {}) {
    std::vector<float> logits = row;
    Sequence seq = sequence_of(prompt, output, &p);
    return pick(logits, seq, eos, u);
  };
  SamplingParams p;
  p.temperature = 1.0;
  CHECK(draw(p, 0.05) == 0);
  CHECK(draw(p, 0.70) == 1);
  CHECK(draw(p, 0.75) == 2);
  CHECK(draw(p, 0.99) == 3);

  // top_k 2 keeps {1, 2}: P(1) = 1 / (1 + e^-1) = 0.7311.
  SamplingParams k = p;
  k.top_k = 2;
  CHECK(draw(k, 0.05) == 1);
  CHECK(draw(k, 0.72) == 1);
  CHECK(draw(k, 0.74) == 2);
  CHECK(draw(k, 0.99) == 2);
  // Temperature 0.5 sharpens it: P(1) = 1 / (1 + e^-2) = 0.8808.
  SamplingParams t = k;
  t.temperature = 0.5;
  CHECK(draw(t, 0.74) == 1);
  CHECK(draw(t, 0.87) == 1);
  CHECK(draw(t, 0.89) == 2);

  // top_p 0.5: token 1 alone holds 0.6439; 0.8: tokens 1 and 2 (0.8808).
  SamplingParams tp = p;
  tp.top_p = 0.5;
  CHECK(draw(tp, 0.01) == 1);
  CHECK(draw(tp, 0.99) == 1);
  tp.top_p = 0.8;
  CHECK(draw(tp, 0.99) == 2);
  CHECK(draw(tp, 0.01) == 1);

  // min_p 0.3 drops token 0 (0.1353 of the top) and 3; 0.4 keeps token 1 only.
  SamplingParams mp = p;
  mp.min_p = 0.3;
  CHECK(draw(mp, 0.01) == 1);
  CHECK(draw(mp, 0.99) == 2);
  mp.min_p = 0.4;
  CHECK(draw(mp, 0.99) == 1);

  // Penalties, greedy: token 1 (3.0) leads until penalised below token 2 (2.0).
  SamplingParams g;
  g.temperature = 0;
  CHECK(draw(g, 0) == 1);
  SamplingParams rp = g;
  rp.repetition_penalty = 2.0;  // 3 / 2 = 1.5 < 2
  CHECK(draw(rp, 0, {1}) == 2);
  CHECK(draw(rp, 0, {0}) == 1);  // another token seen: no change
  SamplingParams fp = g;
  fp.frequency_penalty = 0.6;  // output holds token 1 twice: 3 - 1.2 = 1.8 < 2
  CHECK(draw(fp, 0, {0}, {1, 1}) == 2);
  CHECK(draw(fp, 0, {1}, {}) == 1);  // the prompt does not count
  SamplingParams pp = g;
  pp.presence_penalty = 1.5;  // once, however often: 3 - 1.5 = 1.5
  CHECK(draw(pp, 0, {0}, {1}) == 2);
  // A greedy row in the same batch as a sampled one stays the argmax and
  // does not consume its sequence's draw.
  {
    SamplingParams sampled = p;
    sampled.seed = 5;
    Sequence a = sequence_of({0}, {}, &g), b = sequence_of({0}, {}, &sampled), b2 = sequence_of({0}, {}, &sampled);
    a.rng.seed(1);
    const auto before = a.rng;
    b.rng.seed(5);
    b2.rng.seed(5);
    SamplingBatch batch;
    batch.add(a, {});
    batch.add(b, {});
    CHECK(a.rng == before);
    CHECK(batch.params[0].temperature == 0);
    CHECK(batch.params[1].uniform == Sampler::uniform01(b2.rng));  // b's own seeded draw
  }

  // min_tokens bans eos (and stop ids) until enough tokens are out.
  SamplingParams mt = g;
  mt.min_tokens = 2;
  CHECK(draw(mt, 0, {0}, {}, {1}) == 2);
  CHECK(draw(mt, 0, {0}, {3, 3}, {1}) == 1);
  mt.ignore_eos = true;
  CHECK(draw(mt, 0, {0}, {}, {1}) == 1);
  mt.ignore_eos = false;
  mt.stop_token_ids = {1, 2};
  CHECK(draw(mt, 0, {0}, {}, {}) == 0);
}
