// Random-weight Llama (llama3 RoPE), Qwen2 (qkv bias, bf16), Qwen3 (q/k
// norm, fp16), Mistral (sliding window 5, shorter than the prompts, so the
// window changes the result) and Qwen2 with the window on its second layer
// only, against transformers fp32 references made by
// tests/fixtures/models/make_engine_fixtures.py, and the engine's batching,
// prefix caching, preemption and seeding invariants on them.
#include <doctest/doctest.h>

#include <cmath>

#include "engine_test_util.h"

using namespace llmctl::engine;
using namespace llmctl::engine::testing;

namespace {
const char* kModels[] = {"tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-mistral", "tiny-qwen2-swa"};

std::map<uint64_t, std::vector<int32_t>> add_all(Engine& e, const nlohmann::json& refs, SamplingParams p) {
  std::map<uint64_t, std::vector<int32_t>> expected;
  for (const auto& r : refs) {
    auto id = e.add_request(ids_of(r["prompt_ids"]), p);
    REQUIRE(id.is_ok());
    expected[*id] = ids_of(r["greedy_ids"]);
  }
  return expected;
}
}  // namespace

TEST_CASE("tiny models: greedy equals transformers, last logits within 1e-4 relative") {
  for (const char* name : kModels) {
    CAPTURE(std::string(name));
    const std::string dir = fixture_dir() + "/" + name;
    auto ref = read_json(dir + "/reference.json");
    for (const auto& r : ref["references"]) {
      const auto logits = prompt_logits(dir, ids_of(r["prompt_ids"]));
      const auto want = r["last_prompt_logits"].get<std::vector<double>>();
      REQUIRE(logits.size() == want.size());
      double max_abs = 0, worst = 0;
      for (double w : want) max_abs = std::max(max_abs, std::abs(w));
      for (std::size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(logits[i] - want[i]) / max_abs);
      CAPTURE(r["prompt_ids"].size());
      CHECK(worst < 1e-4);
    }
    auto loaded = load(dir);
    for (const auto& r : ref["references"]) {
      auto id = loaded.engine->add_request(ids_of(r["prompt_ids"]), greedy(24));
      REQUIRE(id.is_ok());
      auto done = run_all(*loaded.engine);
      CHECK(done[*id].outputs[0].token_ids == ids_of(r["greedy_ids"]));
    }
  }
}

TEST_CASE("tiny models: batched with chunked prefill equals unbatched") {
  for (const char* name : kModels) {
    CAPTURE(std::string(name));
    const std::string dir = fixture_dir() + "/" + name;
    auto ref = read_json(dir + "/reference.json");
    EngineConfig cfg;
    cfg.scheduler.max_num_batched_tokens = 5;
    cfg.scheduler.block_size = 4;
    auto loaded = load(dir, cfg);
    auto expected = add_all(*loaded.engine, ref["references"], greedy(24));
    auto done = run_all(*loaded.engine);
    for (const auto& [id, ids] : expected) CHECK(done[id].outputs[0].token_ids == ids);
  }
}

TEST_CASE("prefix-cache hits give the same tokens") {
  const std::string dir = fixture_dir() + "/tiny-qwen3";
  auto ref = read_json(dir + "/reference.json");
  EngineConfig cfg;
  cfg.scheduler.block_size = 4;
  auto loaded = load(dir, cfg);
  const auto& r = ref["references"][2];  // 41-token prompt: 10 full blocks
  for (int round = 0; round < 2; ++round) {
    auto id = loaded.engine->add_request(ids_of(r["prompt_ids"]), greedy(24));
    REQUIRE(id.is_ok());
    auto done = run_all(*loaded.engine);
    CHECK(done[*id].outputs[0].token_ids == ids_of(r["greedy_ids"]));
    CHECK(done[*id].num_cached_tokens == (round == 0 ? 0 : 40));
  }
  // A prompt sharing only a prefix hits the shared blocks.
  auto prompt = ids_of(r["prompt_ids"]);
  prompt.resize(21);
  auto id = loaded.engine->add_request(prompt, greedy(4));
  REQUIRE(id.is_ok());
  auto done = run_all(*loaded.engine);
  CHECK(done[*id].num_cached_tokens == 20);
}

TEST_CASE("preemption under a tiny KV budget gives the same tokens") {
  for (const char* name : kModels) {
    CAPTURE(std::string(name));
    const std::string dir = fixture_dir() + "/" + name;
    auto ref = read_json(dir + "/reference.json");
    EngineConfig cfg;
    cfg.scheduler.block_size = 4;
    cfg.scheduler.max_model_len = 80;
    cfg.scheduler.num_blocks = 20;  // the three requests need 8 + 8 + 17 blocks at the end
    cfg.scheduler.enable_prefix_caching = false;
    auto loaded = load(dir, cfg);
    auto expected = add_all(*loaded.engine, ref["references"], greedy(24));
    auto done = run_all(*loaded.engine);
    for (const auto& [id, ids] : expected) CHECK(done[id].outputs[0].token_ids == ids);
    CHECK(loaded.engine->scheduler().num_preemptions() > 0);
  }
}

TEST_CASE("seeded sampling is reproducible across runs and batch compositions") {
  const std::string dir = fixture_dir() + "/tiny-llama";
  SamplingParams p;
  p.temperature = 1.2;
  p.top_k = 50;
  p.top_p = 0.95;
  p.min_p = 0.01;
  p.seed = 1234;
  p.max_tokens = 20;
  p.ignore_eos = true;
  const std::vector<int32_t> prompt{1, 17, 99, 3};
  std::vector<int32_t> alone;
  {
    auto loaded = load(dir);
    auto id = loaded.engine->add_request(prompt, p);
    alone = run_all(*loaded.engine)[*id].outputs[0].token_ids;
  }
  {
    auto loaded = load(dir);
    SamplingParams other = p;
    other.seed = 99;
    REQUIRE(loaded.engine->add_request({1, 5, 6}, other).is_ok());
    auto id = loaded.engine->add_request(prompt, p);
    REQUIRE(loaded.engine->add_request({1, 200, 201, 202, 203}, other).is_ok());
    CHECK(run_all(*loaded.engine)[*id].outputs[0].token_ids == alone);
  }
  // A different seed gives a different sequence (20 tokens of a peaked but
  // not deterministic distribution).
  auto loaded = load(dir);
  p.seed = 4321;
  auto id = loaded.engine->add_request(prompt, p);
  CHECK(run_all(*loaded.engine)[*id].outputs[0].token_ids != alone);
}

TEST_CASE("n > 1, stop token ids, min_tokens, max_tokens, logprobs, abort") {
  const std::string dir = fixture_dir() + "/tiny-qwen2";
  auto ref = read_json(dir + "/reference.json");
  const auto& r = ref["references"][0];
  const auto greedy_ids = ids_of(r["greedy_ids"]);
  auto loaded = load(dir);
  Engine& e = *loaded.engine;

  SamplingParams n3;
  n3.n = 3;
  n3.temperature = 1.0;
  n3.seed = 7;
  n3.max_tokens = 6;
  n3.ignore_eos = true;
  auto id_n = e.add_request(ids_of(r["prompt_ids"]), n3);
  // Stop at the 3rd greedy token; with min_tokens 5 the stop id is masked instead.
  SamplingParams stop = greedy(24);
  stop.stop_token_ids = {greedy_ids[2]};
  auto id_stop = e.add_request(ids_of(r["prompt_ids"]), stop);
  SamplingParams lp = greedy(3);
  lp.logprobs = 3;
  auto id_lp = e.add_request(ids_of(r["prompt_ids"]), lp);
  auto id_abort = e.add_request({1, 2, 3, 4, 5}, greedy(100));
  REQUIRE((id_n.is_ok() && id_stop.is_ok() && id_lp.is_ok() && id_abort.is_ok()));
  REQUIRE(e.step().is_ok());
  const int free_before = e.scheduler().num_running();
  e.abort_request(*id_abort);
  CHECK(static_cast<int>(e.scheduler().num_running()) == free_before - 1);
  auto done = run_all(e);

  REQUIRE(done[*id_n].outputs.size() == 3);
  for (const auto& o : done[*id_n].outputs) {
    CHECK(o.token_ids.size() == 6);
    CHECK(o.finish_reason == FinishReason::kLength);
  }
  CHECK(done[*id_n].outputs[0].token_ids != done[*id_n].outputs[1].token_ids);

  // The stop id may occur earlier too; the output ends at its first occurrence.
  const auto& so = done[*id_stop].outputs[0];
  CHECK(so.finish_reason == FinishReason::kStop);
  CHECK(so.token_ids.back() == greedy_ids[2]);
  CHECK(so.token_ids.size() <= 3);

  const auto& lo = done[*id_lp].outputs[0];
  REQUIRE(lo.logprobs.size() == 3);
  CHECK(lo.logprobs[0].token_id == greedy_ids[0]);
  REQUIRE(lo.logprobs[0].top.size() == 3);
  CHECK(lo.logprobs[0].top[0].first == greedy_ids[0]);  // greedy picks the most likely
  CHECK(lo.logprobs[0].logprob == doctest::Approx(lo.logprobs[0].top[0].second));
  CHECK(lo.logprobs[0].logprob <= 0);

  CHECK(done[*id_abort].outputs[0].finish_reason == FinishReason::kAbort);
  CHECK(e.scheduler().block_manager().num_free_blocks() == e.scheduler().block_manager().num_blocks());
}

TEST_CASE("add_request validates its input") {
  auto loaded = load(fixture_dir() + "/tiny-llama");
  CHECK_FALSE(loaded.engine->add_request({}, greedy(4)).is_ok());
  CHECK_FALSE(loaded.engine->add_request({1, 999}, greedy(4)).is_ok());
  SamplingParams bad = greedy(4);
  bad.top_p = 0;
  CHECK(loaded.engine->add_request({1}, bad).status().message().find("top_p") != std::string::npos);
  SamplingParams stop = greedy(4);
  stop.stop = {"x"};
  CHECK_FALSE(loaded.engine->add_request({1}, stop).is_ok());  // no detokenizer
}
