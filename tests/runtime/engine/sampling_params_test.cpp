// Sampling parameters driven through the whole engine on tiny-llama (greedy
// reference from transformers in tests/fixtures/models/tiny-llama): stop
// strings across token boundaries, stop token ids, eos / ignore_eos /
// min_tokens, max_tokens, n > 1, logprobs. Expectations are computed here by
// hand from the reference token ids and logits.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "engine_test_util.h"

using namespace llmctl::engine;
using namespace llmctl::engine::testing;

namespace {

const std::string kDir = fixture_dir() + "/tiny-llama";

// A stand-in tokenizer: token 30 reads "<30>".
std::string token_text(int32_t id) {
  std::string s(1, '<');  // not "<" + ...: GCC 12's -Wrestrict false positive
  s += std::to_string(id);
  s += '>';
  return s;
}
std::string text_of(const std::vector<int32_t>& ids, std::size_t count) {
  std::string s;
  for (std::size_t i = 0; i < count && i < ids.size(); ++i) s += token_text(ids[i]);
  return s;
}

struct Fixture {
  Fixture() {
    auto ref = read_json(kDir + "/reference.json");
    prompt = ids_of(ref["references"][0]["prompt_ids"]);
    greedy_ids = ids_of(ref["references"][0]["greedy_ids"]);
    logits = ref["references"][0]["last_prompt_logits"].get<std::vector<double>>();
  }
  std::vector<int32_t> prompt, greedy_ids;
  std::vector<double> logits;
};

LoadedEngine load_with(EngineConfig cfg = {}, std::vector<int32_t> extra_eos = {}) {
  cfg.num_threads = 2;
  if (cfg.scheduler.max_model_len == 2048) cfg.scheduler.max_model_len = 0;
  auto e = load_engine(
      kDir, cfg,
      [](std::span<const int32_t> ids) { return text_of({ids.begin(), ids.end()}, ids.size()); }, {}, extra_eos);
  REQUIRE_MESSAGE(e.is_ok(), e.status().to_string());
  return std::move(e).value();
}

CompletionOutput run_one(Engine& e, const std::vector<int32_t>& prompt, const SamplingParams& p) {
  auto id = e.add_request(prompt, p);
  REQUIRE_MESSAGE(id.is_ok(), id.status().to_string());
  auto done = run_all(e);
  REQUIRE(done.count(*id) == 1);
  return done[*id].outputs.at(0);
}

std::vector<int32_t> head(const std::vector<int32_t>& v, std::size_t n) { return {v.begin(), v.begin() + n}; }

// The stop string made of the end of token k's text and the start of token
// k+1's ("30><9" from "<30>" "<94>"), chosen where it occurs once in the
// whole reference text.
std::string spanning_stop(const std::vector<int32_t>& g, std::size_t* k_out) {
  const std::string all = text_of(g, g.size());
  for (std::size_t k = 2; k + 1 < g.size(); ++k) {
    const std::string a = token_text(g[k]), b = token_text(g[k + 1]);
    std::string s(a.begin() + 1, a.end());
    s.append(b.begin(), b.end() - 2);
    if (all.find(s) == all.rfind(s)) {
      *k_out = k;
      return s;
    }
  }
  FAIL("no unique spanning stop string");
  return "";
}

}  // namespace

TEST_CASE("stop strings across token boundaries cut the text and emit no later token") {
  Fixture f;
  auto loaded = load_with();
  std::size_t k = 0;
  const std::string stop = spanning_stop(f.greedy_ids, &k);
  CAPTURE(stop);
  const std::string full = text_of(f.greedy_ids, k + 2);
  const std::size_t pos = full.find(stop);
  REQUIRE(pos != std::string::npos);
  REQUIRE(pos < text_of(f.greedy_ids, k + 1).size());  // starts before token k+1 ...
  REQUIRE(pos + stop.size() > text_of(f.greedy_ids, k + 1).size());  // ... ends inside it

  SamplingParams p = greedy(24);
  p.stop = {"never there", stop};
  CompletionOutput o = run_one(*loaded.engine, f.prompt, p);
  CHECK(o.finish_reason == FinishReason::kStop);
  CHECK(o.token_ids == head(f.greedy_ids, k + 2));
  CHECK(o.text == full.substr(0, pos));

  p.include_stop_str_in_output = true;
  o = run_one(*loaded.engine, f.prompt, p);
  CHECK(o.token_ids == head(f.greedy_ids, k + 2));
  CHECK(o.text == full.substr(0, pos + stop.size()));

  // Of several stop strings the earliest in the text wins: the text of
  // token 1 in full ends generation after token 1.
  p.include_stop_str_in_output = false;
  p.stop = {stop, token_text(f.greedy_ids[1])};
  const std::size_t first_end = text_of(f.greedy_ids, 24).find(token_text(f.greedy_ids[1]));
  REQUIRE(first_end == token_text(f.greedy_ids[0]).size());
  o = run_one(*loaded.engine, f.prompt, p);
  CHECK(o.token_ids == head(f.greedy_ids, 2));
  CHECK(o.text == token_text(f.greedy_ids[0]));

  // An occurrence completed before min_tokens output tokens is ignored (the
  // stop string occurs once, so generation runs to max_tokens).
  p.stop = {stop};
  p.min_tokens = static_cast<int>(k) + 4;
  o = run_one(*loaded.engine, f.prompt, p);
  CHECK(o.finish_reason == FinishReason::kLength);
  CHECK(o.token_ids == f.greedy_ids);
  CHECK(o.text == text_of(f.greedy_ids, 24));
}

TEST_CASE("stop token ids end the output at their first occurrence, after min_tokens") {
  Fixture f;
  auto loaded = load_with();
  const int32_t stop_id = f.greedy_ids[3];
  const auto first = static_cast<std::size_t>(std::find(f.greedy_ids.begin(), f.greedy_ids.end(), stop_id) -
                                              f.greedy_ids.begin());
  SamplingParams p = greedy(24);
  p.stop_token_ids = {stop_id};
  CompletionOutput o = run_one(*loaded.engine, f.prompt, p);
  CHECK(o.finish_reason == FinishReason::kStop);
  CHECK(o.token_ids == head(f.greedy_ids, first + 1));

  // With min_tokens past it, the id is masked: greedy takes another token there.
  p.min_tokens = static_cast<int>(first) + 2;
  o = run_one(*loaded.engine, f.prompt, p);
  REQUIRE(o.token_ids.size() > first + 1);
  CHECK(head(o.token_ids, first) == head(f.greedy_ids, first));
  CHECK(o.token_ids[first] != stop_id);
  for (std::size_t i = 0; i < static_cast<std::size_t>(p.min_tokens); ++i) CHECK(o.token_ids[i] != stop_id);
}

TEST_CASE("eos ends the output unless ignore_eos; min_tokens holds it back") {
  Fixture f;
  const int32_t eos = f.greedy_ids[4];  // pretend the model's 5th token is eos
  const auto first =
      static_cast<std::size_t>(std::find(f.greedy_ids.begin(), f.greedy_ids.end(), eos) - f.greedy_ids.begin());
  auto loaded = load_with({}, {eos});
  SamplingParams p = greedy(24);
  p.ignore_eos = false;
  CompletionOutput o = run_one(*loaded.engine, f.prompt, p);
  CHECK(o.finish_reason == FinishReason::kStop);
  CHECK(o.token_ids == head(f.greedy_ids, first + 1));

  p.ignore_eos = true;
  o = run_one(*loaded.engine, f.prompt, p);
  CHECK(o.finish_reason == FinishReason::kLength);
  CHECK(o.token_ids == f.greedy_ids);

  // ignore_eos with min_tokens: eos stays an ordinary token.
  p.min_tokens = 10;
  o = run_one(*loaded.engine, f.prompt, p);
  CHECK(o.token_ids == f.greedy_ids);

  p.ignore_eos = false;
  p.min_tokens = static_cast<int>(first) + 3;
  o = run_one(*loaded.engine, f.prompt, p);
  CHECK(head(o.token_ids, first) == head(f.greedy_ids, first));
  REQUIRE(o.token_ids.size() >= static_cast<std::size_t>(p.min_tokens));
  for (int i = 0; i < p.min_tokens; ++i) CHECK(o.token_ids[static_cast<std::size_t>(i)] != eos);
}

TEST_CASE("max_tokens and max_model_len end the output with reason length") {
  Fixture f;
  {
    auto loaded = load_with();
    CompletionOutput o = run_one(*loaded.engine, f.prompt, greedy(5));
    CHECK(o.finish_reason == FinishReason::kLength);
    CHECK(o.token_ids == head(f.greedy_ids, 5));
    CHECK(o.text == text_of(f.greedy_ids, 5));
  }
  EngineConfig cfg;
  cfg.scheduler.max_model_len = static_cast<int32_t>(f.prompt.size()) + 6;
  auto loaded = load_with(cfg);
  CompletionOutput o = run_one(*loaded.engine, f.prompt, greedy(24));
  CHECK(o.finish_reason == FinishReason::kLength);
  CHECK(o.token_ids == head(f.greedy_ids, 6));
}

TEST_CASE("n > 1: every completion is its own sequence; seeded sequence i uses seed + i") {
  Fixture f;
  auto loaded = load_with();
  SamplingParams p = greedy(24);
  p.n = 3;
  auto id = loaded.engine->add_request(f.prompt, p);
  REQUIRE(id.is_ok());
  auto done = run_all(*loaded.engine);
  REQUIRE(done[*id].outputs.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(done[*id].outputs[i].index == i);
    CHECK(done[*id].outputs[i].token_ids == f.greedy_ids);
  }

  SamplingParams s;
  s.temperature = 1.5;
  s.max_tokens = 16;
  s.ignore_eos = true;
  s.n = 2;
  s.seed = 500;
  auto pair = loaded.engine->add_request(f.prompt, s);
  s.n = 1;
  s.seed = 501;
  auto single = loaded.engine->add_request(f.prompt, s);
  REQUIRE((pair.is_ok() && single.is_ok()));
  done = run_all(*loaded.engine);
  REQUIRE(done[*pair].outputs.size() == 2);
  CHECK(done[*pair].outputs[1].token_ids == done[*single].outputs[0].token_ids);
  CHECK(done[*pair].outputs[0].token_ids != done[*pair].outputs[1].token_ids);
}

TEST_CASE("logprobs and top logprobs equal log_softmax of the reference logits") {
  Fixture f;
  auto loaded = load_with();
  SamplingParams p = greedy(3);
  p.logprobs = 5;
  CompletionOutput o = run_one(*loaded.engine, f.prompt, p);
  REQUIRE(o.logprobs.size() == 3);
  // Reference: log_softmax of transformers' last-prompt logits, in double.
  const double mx = *std::max_element(f.logits.begin(), f.logits.end());
  double sum = 0;
  for (double x : f.logits) sum += std::exp(x - mx);
  std::vector<std::pair<double, int32_t>> lp;
  for (std::size_t i = 0; i < f.logits.size(); ++i) lp.emplace_back(f.logits[i] - mx - std::log(sum), static_cast<int32_t>(i));
  std::sort(lp.rbegin(), lp.rend());
  const TokenLogprob& first = o.logprobs[0];
  CHECK(first.token_id == f.greedy_ids[0]);
  CHECK(first.logprob == doctest::Approx(lp[0].first).epsilon(1e-4));
  REQUIRE(first.top.size() == 5);
  for (std::size_t i = 0; i < 5; ++i) {
    CAPTURE(i);
    CHECK(first.top[i].first == lp[i].second);
    CHECK(std::abs(first.top[i].second - lp[i].first) < 1e-4);
  }
  double cumulative = 0;
  for (const auto& t : o.logprobs) cumulative += t.logprob;
  CHECK(o.cumulative_logprob == doctest::Approx(cumulative));
}
