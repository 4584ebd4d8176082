// End to end through the engine on the CUDA backend: the real trained
// stories260K model, loaded as `llmctl generate --device cuda` loads it
// (engine::load_engine with EngineConfig::device), must give the same greedy
// tokens as the CPU backend and as transformers' fp32 references, alone and
// batched with chunked prefill. The model folder is LLMCTL_STORIES_DIR when
// set (the GPU machine gets a copy), else ../shared/assets/stories260K.
#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/engine/engine_loader.h"
#include "runtime/model/model_config.h"

namespace llmctl::engine {
namespace {

std::string stories_dir() {
  const char* env = std::getenv("LLMCTL_STORIES_DIR");
  return env != nullptr ? std::string(env) : std::string(LLMCTL_SHARED_DIR) + "/assets/stories260K";
}

std::map<uint64_t, std::vector<int32_t>> run_greedy(const std::string& device, int max_batched_tokens,
                                                    const nlohmann::json& refs, bool batched) {
  EngineConfig cfg;
  cfg.device = device;
  cfg.num_threads = 2;
  if (max_batched_tokens > 0) cfg.scheduler.max_num_batched_tokens = max_batched_tokens;
  auto loaded = load_engine(stories_dir(), cfg);
  REQUIRE_MESSAGE(loaded.is_ok(), loaded.status().to_string());
  std::map<uint64_t, std::vector<int32_t>> out;
  uint64_t index = 0;
  auto drain = [&] {
    while (loaded->engine->has_unfinished()) {
      auto outs = loaded->engine->step();
      REQUIRE_MESSAGE(outs.is_ok(), outs.status().to_string());
      for (auto& o : *outs) {
        if (o.finished) out[o.request_id] = o.outputs[0].token_ids;
      }
    }
  };
  std::map<uint64_t, uint64_t> order;  // request id -> reference index
  for (const auto& r : refs) {
    SamplingParams p;
    p.temperature = 0;
    p.ignore_eos = true;
    p.max_tokens = static_cast<int>(r["greedy_ids"].size());
    auto id = loaded->engine->add_request(r["prompt_ids"].get<std::vector<int32_t>>(), p);
    REQUIRE(id.is_ok());
    order[*id] = index++;
    if (!batched) drain();
  }
  drain();
  std::map<uint64_t, std::vector<int32_t>> by_ref;
  for (const auto& [id, ids] : out) by_ref[order[id]] = ids;
  return by_ref;
}

TEST_CASE("stories260K greedy on cuda equals cpu and transformers, alone and batched with chunked prefill") {
  auto text = model::read_text_file(stories_dir() + "/reference_greedy.json");
  REQUIRE_MESSAGE(text.is_ok(), text.status().to_string());
  const auto refs = nlohmann::json::parse(*text)["references"];
  const auto cpu = run_greedy("cpu", 0, refs, false);
  const auto gpu = run_greedy("cuda", 0, refs, false);
  const auto gpu_batched = run_greedy("cuda", 7, refs, true);
  for (std::size_t i = 0; i < refs.size(); ++i) {
    CAPTURE(refs[i]["prompt"].get<std::string>());
    const auto want = refs[i]["greedy_ids"].get<std::vector<int32_t>>();
    CHECK(gpu.at(i) == cpu.at(i));
    CHECK(gpu.at(i) == want);
    CHECK(gpu_batched.at(i) == want);
  }
}

}  // namespace
}  // namespace llmctl::engine
