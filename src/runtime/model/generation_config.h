// Default sampling settings of a model folder (generation_config.json). Every
// field is optional; absent ones stay nullopt so callers can layer request
// settings on top.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace llmctl::model {

struct GenerationConfig {
  std::optional<bool> do_sample;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int64_t> top_k;
  std::optional<double> min_p;
  std::optional<double> repetition_penalty;
  std::optional<int64_t> max_new_tokens;
  std::vector<int64_t> eos_token_ids;  // an int or a list in the file
  std::optional<int64_t> bos_token_id;
  std::optional<int64_t> pad_token_id;
};

Result<GenerationConfig> parse_generation_config(std::string_view json_text);

// Reads <model_dir>/generation_config.json; a missing file gives an empty config.
Result<GenerationConfig> load_generation_config(const std::string& model_dir);

}  // namespace llmctl::model
