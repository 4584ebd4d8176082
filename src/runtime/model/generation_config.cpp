#include "runtime/model/generation_config.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "runtime/model/model_config.h"

namespace llmctl::model {
namespace {

using json = nlohmann::json;

template <typename T>
Status get_opt(const json& j, const char* key, std::optional<T>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::ok();
  if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) return Status::invalid_argument(std::string("\"") + key + "\" must be a boolean");
  } else if constexpr (std::is_integral_v<T>) {
    if (!it->is_number_integer()) return Status::invalid_argument(std::string("\"") + key + "\" must be an integer");
  } else {
    if (!it->is_number()) return Status::invalid_argument(std::string("\"") + key + "\" must be a number");
  }
  *out = it->get<T>();
  return Status::ok();
}

}  // namespace

Result<GenerationConfig> parse_generation_config(std::string_view json_text) {
  json j = json::parse(json_text, nullptr, false);
  if (j.is_discarded()) return Status::invalid_argument("not valid JSON");
  if (!j.is_object()) return Status::invalid_argument("must be a JSON object");
  GenerationConfig g;
  RETURN_IF_ERROR(get_opt(j, "do_sample", &g.do_sample));
  RETURN_IF_ERROR(get_opt(j, "temperature", &g.temperature));
  RETURN_IF_ERROR(get_opt(j, "top_p", &g.top_p));
  RETURN_IF_ERROR(get_opt(j, "top_k", &g.top_k));
  RETURN_IF_ERROR(get_opt(j, "min_p", &g.min_p));
  RETURN_IF_ERROR(get_opt(j, "repetition_penalty", &g.repetition_penalty));
  RETURN_IF_ERROR(get_opt(j, "max_new_tokens", &g.max_new_tokens));
  RETURN_IF_ERROR(get_opt(j, "bos_token_id", &g.bos_token_id));
  RETURN_IF_ERROR(get_opt(j, "pad_token_id", &g.pad_token_id));
  auto eos = j.find("eos_token_id");
  if (eos != j.end() && !eos->is_null()) {
    if (eos->is_number_integer()) {
      g.eos_token_ids.push_back(eos->get<int64_t>());
    } else if (eos->is_array()) {
      for (const auto& v : *eos) {
        if (!v.is_number_integer()) return Status::invalid_argument("\"eos_token_id\" must hold integers");
        g.eos_token_ids.push_back(v.get<int64_t>());
      }
    } else {
      return Status::invalid_argument("\"eos_token_id\" must be an integer or a list of integers");
    }
  }
  return g;
}

Result<GenerationConfig> load_generation_config(const std::string& model_dir) {
  const std::string path = model_dir + "/generation_config.json";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return GenerationConfig{};
  ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  Result<GenerationConfig> g = parse_generation_config(text);
  if (!g.is_ok()) return g.status().with_context(path);
  return g;
}

}  // namespace llmctl::model
