// Builds an Engine from a model folder on the backend EngineConfig::device
// names (cpu, cuda, auto): config.json,
// generation_config.json (its eos ids join config.json's), safetensors.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/engine/engine.h"
#include "runtime/model/generation_config.h"
#include "runtime/model/model_weights.h"

namespace llmctl::engine {

struct LoadedEngine {
  std::unique_ptr<Engine> engine;
  model::GenerationConfig generation;  // the folder's sampling defaults
  std::vector<int32_t> eos_ids;
};

// The weights of `layout`'s rank as `load_format` says: "auto" maps the
// folder's safetensors, "dummy" fills seeded random bf16 values (the same
// model on every rank count).
// `threads`: how many make random weights (0: one per core).
Result<model::ModelWeights> load_rank_weights(const std::string& model_dir, const model::ModelConfig& config,
                                              const model::ShardLayout& layout, const std::string& load_format,
                                              const model::LoadProgressCallback& progress = {}, int threads = 0);

// extra_eos_ids (e.g. the tokenizer's) are added to the model's own.
Result<LoadedEngine> load_engine(const std::string& model_dir, EngineConfig config, Detokenizer detokenizer = {},
                                 const model::LoadProgressCallback& progress = {},
                                 const std::vector<int32_t>& extra_eos_ids = {});

}  // namespace llmctl::engine
