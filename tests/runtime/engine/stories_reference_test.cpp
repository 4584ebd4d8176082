// Greedy output of the real trained stories260K model against transformers'
// fp32 greedy references (../shared/assets/stories260K/reference_greedy.json).
#include <doctest/doctest.h>

#include <cmath>

#include "engine_test_util.h"

using namespace llmctl::engine;
using namespace llmctl::engine::testing;

TEST_CASE("stories260K greedy equals transformers token for token, each prompt alone") {
  auto ref = read_json(stories_dir() + "/reference_greedy.json");
  auto loaded = load(stories_dir());
  for (const auto& r : ref["references"]) {
    CAPTURE(r["prompt"].get<std::string>());
    const auto prompt = ids_of(r["prompt_ids"]);
    const auto expected = ids_of(r["greedy_ids"]);
    auto id = loaded.engine->add_request(prompt, greedy(static_cast<int>(expected.size())));
    REQUIRE(id.is_ok());
    auto done = run_all(*loaded.engine);
    REQUIRE(done.count(*id) == 1);
    CHECK(done[*id].outputs[0].token_ids == expected);
  }
}

TEST_CASE("stories260K: all prompts batched together give the unbatched results") {
  auto ref = read_json(stories_dir() + "/reference_greedy.json");
  EngineConfig cfg;
  cfg.scheduler.max_num_batched_tokens = 7;  // forces chunked prefill mixed with decodes
  auto loaded = load(stories_dir(), cfg);
  std::map<uint64_t, std::vector<int32_t>> expected;
  for (const auto& r : ref["references"]) {
    auto id = loaded.engine->add_request(ids_of(r["prompt_ids"]), greedy(static_cast<int>(r["greedy_ids"].size())));
    REQUIRE(id.is_ok());
    expected[*id] = ids_of(r["greedy_ids"]);
  }
  auto done = run_all(*loaded.engine);
  for (const auto& [id, ids] : expected) CHECK(done[id].outputs[0].token_ids == ids);
}

TEST_CASE("stories260K: last prompt logits match transformers' top-5 within 1e-4 relative") {
  auto ref = read_json(stories_dir() + "/reference_greedy.json");
  for (const auto& r : ref["references"]) {
    CAPTURE(r["prompt"].get<std::string>());
    const auto logits = prompt_logits(stories_dir(), ids_of(r["prompt_ids"]));
    REQUIRE(logits.size() == 512);
    for (const auto& pair : r["last_prompt_logits_top5"]) {
      const int id = pair[0].get<int>();
      const double want = pair[1].get<double>();
      CAPTURE(id);
      CHECK(std::abs(logits[id] - want) <= 1e-4 * std::max(1.0, std::abs(want)));
    }
  }
}
