// Shared helpers for engine tests: loading models, running to completion.
#pragma once

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/engine/engine_loader.h"
#include "runtime/model/model_config.h"

namespace llmctl::engine::testing {

inline std::string stories_dir() { return std::string(LLMCTL_SHARED_DIR) + "/assets/stories260K"; }
inline std::string fixture_dir() { return std::string(LLMCTL_SOURCE_DIR) + "/tests/fixtures/models"; }

inline nlohmann::json read_json(const std::string& path) {
  auto text = model::read_text_file(path);
  REQUIRE_MESSAGE(text.is_ok(), text.status().to_string());
  return nlohmann::json::parse(*text);
}

// The sampling cases transformers' processors were run on
// (sampler_reference.json, written by tools/engine_fixtures/make_sampler_reference.py).
inline nlohmann::json sampler_reference() {
  return read_json(std::string(LLMCTL_SOURCE_DIR) + "/tests/runtime/engine/sampler_reference.json");
}

// A reference case's parameters (absent keys: the OpenAI defaults).
inline SamplingParams reference_params(const nlohmann::json& j) {
  SamplingParams p;
  p.temperature = j.value("temperature", 0.0);
  p.top_k = j.value("top_k", -1);
  p.top_p = j.value("top_p", 1.0);
  p.min_p = j.value("min_p", 0.0);
  p.repetition_penalty = j.value("repetition_penalty", 1.0);
  p.presence_penalty = j.value("presence_penalty", 0.0);
  p.frequency_penalty = j.value("frequency_penalty", 0.0);
  p.min_tokens = j.value("min_tokens", 0);
  p.max_tokens = 100;
  return p;
}

inline LoadedEngine load(const std::string& dir, EngineConfig config = {}) {
  if (config.scheduler.max_model_len == 2048) config.scheduler.max_model_len = 0;  // the model's own
  config.num_threads = 2;
  auto e = load_engine(dir, config);
  REQUIRE_MESSAGE(e.is_ok(), e.status().to_string());
  return std::move(e).value();
}

// Runs until every request finished; returns request id -> final output.
inline std::map<uint64_t, RequestOutput> run_all(Engine& engine) {
  std::map<uint64_t, RequestOutput> done;
  while (engine.has_unfinished()) {
    auto outs = engine.step();
    REQUIRE_MESSAGE(outs.is_ok(), outs.status().to_string());
    for (auto& o : *outs) {
      if (o.finished) done[o.request_id] = o;
    }
  }
  return done;
}

inline SamplingParams greedy(int max_tokens) {
  SamplingParams p;
  p.temperature = 0;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  return p;
}

// Last-position logits of `prompt` through a ModelRunner (one sequence).
inline std::vector<float> prompt_logits(const std::string& dir, const std::vector<int32_t>& prompt) {
  auto config = model::load_model_config(dir);
  REQUIRE(config.is_ok());
  auto weights = model::load_model_weights(dir, *config);
  REQUIRE_MESSAGE(weights.is_ok(), weights.status().to_string());
  const int32_t block_size = 4, num_blocks = static_cast<int32_t>(prompt.size()) / block_size + 2;
  auto runner = ModelRunner::create(kernels::make_cpu_backend(2), *config, *weights, num_blocks, block_size);
  REQUIRE_MESSAGE(runner.is_ok(), runner.status().to_string());
  BlockManager blocks(num_blocks, block_size, false);
  Sequence seq;
  seq.token_ids = prompt;
  seq.num_prompt_tokens = static_cast<int32_t>(prompt.size());
  REQUIRE(blocks.allocate(seq, seq.num_tokens()));
  SchedulerOutput out;
  out.scheduled.push_back({&seq, seq.num_tokens(), true});
  REQUIRE((*runner)->launch(StepBatch::from_schedule(out, block_size), /*want_ids=*/false).is_ok());
  auto logits = (*runner)->wait(nullptr);
  REQUIRE(logits.is_ok());
  return *logits;
}

inline std::vector<int32_t> ids_of(const nlohmann::json& j) { return j.get<std::vector<int32_t>>(); }

}  // namespace llmctl::engine::testing
