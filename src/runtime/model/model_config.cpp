#include "runtime/model/model_config.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace llmctl::model {
namespace {

using json = nlohmann::json;

Status get_int(const json& j, const char* key, int64_t* out, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return Status::invalid_argument(std::string("missing required key \"") + key + "\"");
    return Status::ok();
  }
  if (!it->is_number_integer()) {
    return Status::invalid_argument(std::string("\"") + key + "\" must be an integer, got " + it->dump());
  }
  *out = it->get<int64_t>();
  return Status::ok();
}

Status get_double(const json& j, const char* key, double* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::ok();
  if (!it->is_number()) {
    return Status::invalid_argument(std::string("\"") + key + "\" must be a number, got " + it->dump());
  }
  *out = it->get<double>();
  return Status::ok();
}

Status get_bool(const json& j, const char* key, bool* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::ok();
  if (!it->is_boolean()) {
    return Status::invalid_argument(std::string("\"") + key + "\" must be true or false, got " + it->dump());
  }
  *out = it->get<bool>();
  return Status::ok();
}

// An id or a list of ids (eos_token_id is either in published configs).
Status get_id_list(const json& j, const char* key, std::vector<int64_t>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::ok();
  out->clear();
  if (it->is_number_integer()) {
    out->push_back(it->get<int64_t>());
    return Status::ok();
  }
  if (it->is_array()) {
    for (const auto& v : *it) {
      if (!v.is_number_integer()) {
        return Status::invalid_argument(std::string("\"") + key + "\" must hold integers, got " + it->dump());
      }
      out->push_back(v.get<int64_t>());
    }
    return Status::ok();
  }
  return Status::invalid_argument(std::string("\"") + key + "\" must be an integer or a list, got " + it->dump());
}

Status parse_rope(const json& j, RopeConfig* rope) {
  // transformers 5 writes {"rope_parameters": {"rope_theta", "rope_type", ...}};
  // published models write rope_theta at top level and an optional rope_scaling.
  const json* params = nullptr;
  auto rp = j.find("rope_parameters");
  if (rp != j.end() && rp->is_object()) params = &*rp;
  auto rs = j.find("rope_scaling");
  if (params == nullptr && rs != j.end() && rs->is_object()) params = &*rs;
  RETURN_IF_ERROR(get_double(j, "rope_theta", &rope->theta));
  if (params == nullptr) return Status::ok();
  const std::string where = rp != j.end() && rp->is_object() ? "rope_parameters" : "rope_scaling";
  Status s = [&]() -> Status {
    RETURN_IF_ERROR(get_double(*params, "rope_theta", &rope->theta));
    std::string type = "default";
    for (const char* key : {"rope_type", "type"}) {
      auto t = params->find(key);
      if (t != params->end() && t->is_string()) {
        type = t->get<std::string>();
        break;
      }
    }
    if (type == "default") {
      rope->type = RopeConfig::Type::kDefault;
    } else if (type == "linear") {
      rope->type = RopeConfig::Type::kLinear;
      RETURN_IF_ERROR(get_double(*params, "factor", &rope->factor));
    } else if (type == "llama3") {
      rope->type = RopeConfig::Type::kLlama3;
      RETURN_IF_ERROR(get_double(*params, "factor", &rope->factor));
      RETURN_IF_ERROR(get_double(*params, "low_freq_factor", &rope->low_freq_factor));
      RETURN_IF_ERROR(get_double(*params, "high_freq_factor", &rope->high_freq_factor));
      RETURN_IF_ERROR(get_int(*params, "original_max_position_embeddings",
                              &rope->original_max_position_embeddings, false));
      if (rope->low_freq_factor <= 0 || rope->high_freq_factor <= rope->low_freq_factor) {
        return Status::invalid_argument("llama3 scaling needs 0 < low_freq_factor < high_freq_factor");
      }
    } else {
      return Status::unimplemented("rope_type \"" + type + "\" is not supported (default, linear, llama3 are)");
    }
    if (rope->factor <= 0) return Status::invalid_argument("\"factor\" must be positive");
    return Status::ok();
  }();
  if (!s.is_ok()) return s.with_context(where);
  if (rope->theta <= 0) return Status::invalid_argument("rope_theta must be positive");
  return Status::ok();
}

Status parse_into(const json& j, ModelConfig* c) {
  if (!j.is_object()) return Status::invalid_argument("config.json must be a JSON object");
  auto archs = j.find("architectures");
  if (archs == j.end() || !archs->is_array() || archs->empty() || !(*archs)[0].is_string()) {
    return Status::invalid_argument("missing \"architectures\" (a list naming e.g. \"LlamaForCausalLM\")");
  }
  c->architecture_string = (*archs)[0].get<std::string>();
  if (c->architecture_string == "LlamaForCausalLM") {
    c->architecture = Architecture::kLlama;
  } else if (c->architecture_string == "MistralForCausalLM") {
    c->architecture = Architecture::kMistral;
  } else if (c->architecture_string == "Qwen2ForCausalLM") {
    c->architecture = Architecture::kQwen2;
  } else if (c->architecture_string == "Qwen3ForCausalLM") {
    c->architecture = Architecture::kQwen3;
  } else {
    return Status::unimplemented("architecture \"" + c->architecture_string +
                                 "\" is not supported (LlamaForCausalLM, MistralForCausalLM, "
                                 "Qwen2ForCausalLM, Qwen3ForCausalLM are)");
  }
  for (const char* key : {"dtype", "torch_dtype"}) {
    auto it = j.find(key);
    if (it != j.end() && it->is_string()) {
      c->torch_dtype = it->get<std::string>();
      break;
    }
  }
  RETURN_IF_ERROR(get_int(j, "vocab_size", &c->vocab_size, true));
  RETURN_IF_ERROR(get_int(j, "hidden_size", &c->hidden_size, true));
  RETURN_IF_ERROR(get_int(j, "intermediate_size", &c->intermediate_size, true));
  RETURN_IF_ERROR(get_int(j, "num_hidden_layers", &c->num_hidden_layers, true));
  RETURN_IF_ERROR(get_int(j, "num_attention_heads", &c->num_attention_heads, true));
  c->num_key_value_heads = c->num_attention_heads;
  RETURN_IF_ERROR(get_int(j, "num_key_value_heads", &c->num_key_value_heads, false));
  RETURN_IF_ERROR(get_int(j, "max_position_embeddings", &c->max_position_embeddings, false));
  RETURN_IF_ERROR(get_double(j, "rms_norm_eps", &c->rms_norm_eps));
  for (const auto& [key, name] : {std::pair{"vocab_size", c->vocab_size}, {"hidden_size", c->hidden_size},
                                  {"intermediate_size", c->intermediate_size},
                                  {"num_hidden_layers", c->num_hidden_layers},
                                  {"num_attention_heads", c->num_attention_heads},
                                  {"num_key_value_heads", c->num_key_value_heads},
                                  {"max_position_embeddings", c->max_position_embeddings}}) {
    if (name <= 0) return Status::invalid_argument(std::string("\"") + key + "\" must be positive");
  }
  if (c->num_attention_heads % c->num_key_value_heads != 0) {
    return Status::invalid_argument("num_attention_heads (" + std::to_string(c->num_attention_heads) +
                                    ") must be a multiple of num_key_value_heads (" +
                                    std::to_string(c->num_key_value_heads) + ")");
  }
  if (j.contains("head_dim") && !j["head_dim"].is_null()) {
    RETURN_IF_ERROR(get_int(j, "head_dim", &c->head_dim, true));
  } else {
    if (c->hidden_size % c->num_attention_heads != 0) {
      return Status::invalid_argument("hidden_size must be a multiple of num_attention_heads when head_dim is absent");
    }
    c->head_dim = c->hidden_size / c->num_attention_heads;
  }
  if (c->head_dim <= 0 || c->head_dim % 2 != 0) {
    return Status::invalid_argument("\"head_dim\" must be positive and even, got " + std::to_string(c->head_dim));
  }
  {
    auto act = j.find("hidden_act");
    if (act != j.end() && act->is_string() && act->get<std::string>() != "silu") {
      return Status::unimplemented("hidden_act \"" + act->get<std::string>() + "\" is not supported (silu is)");
    }
  }
  bool mlp_bias = false;
  RETURN_IF_ERROR(get_bool(j, "mlp_bias", &mlp_bias));
  if (mlp_bias) return Status::unimplemented("\"mlp_bias\": true is not supported");
  RETURN_IF_ERROR(parse_rope(j, &c->rope));

  // tie_word_embeddings defaults to false in transformers' PretrainedConfig.
  RETURN_IF_ERROR(get_bool(j, "tie_word_embeddings", &c->tie_word_embeddings));
  bool attention_bias = false;
  RETURN_IF_ERROR(get_bool(j, "attention_bias", &attention_bias));
  switch (c->architecture) {
    case Architecture::kLlama:
    case Architecture::kMistral:
      c->qkv_bias = attention_bias;
      c->o_bias = attention_bias;
      break;
    case Architecture::kQwen2:  // q/k/v always carry a bias; o_proj never
      c->qkv_bias = true;
      c->o_bias = false;
      break;
    case Architecture::kQwen3:
      c->qkv_bias = attention_bias;
      c->o_bias = attention_bias;
      c->qk_norm = true;
      break;
  }

  // Sliding window: Mistral applies it on every layer when set; Qwen2/3 only
  // with use_sliding_window, on layers >= max_window_layers. transformers 5's
  // explicit "layer_types" list wins when present.
  int64_t window = 0;
  RETURN_IF_ERROR(get_int(j, "sliding_window", &window, false));
  if (window < 0) return Status::invalid_argument("\"sliding_window\" must be positive");
  c->layer_sliding_window.assign(static_cast<std::size_t>(c->num_hidden_layers), 0);
  auto layer_types = j.find("layer_types");
  if (layer_types != j.end() && layer_types->is_array()) {
    if (static_cast<int64_t>(layer_types->size()) != c->num_hidden_layers) {
      return Status::invalid_argument("\"layer_types\" has " + std::to_string(layer_types->size()) +
                                      " entries, expected num_hidden_layers = " +
                                      std::to_string(c->num_hidden_layers));
    }
    for (std::size_t i = 0; i < layer_types->size(); ++i) {
      const auto& t = (*layer_types)[i];
      if (!t.is_string()) return Status::invalid_argument("\"layer_types\" must hold strings");
      if (t.get<std::string>() == "sliding_attention") {
        if (window <= 0) return Status::invalid_argument("layer_types uses sliding_attention but sliding_window is unset");
        c->layer_sliding_window[i] = window;
      } else if (t.get<std::string>() != "full_attention") {
        return Status::unimplemented("layer type \"" + t.get<std::string>() + "\" is not supported");
      }
    }
  } else if (window > 0) {
    if (c->architecture == Architecture::kMistral) {
      c->layer_sliding_window.assign(c->layer_sliding_window.size(), window);
    } else if (c->architecture == Architecture::kQwen2 || c->architecture == Architecture::kQwen3) {
      bool use_sliding = false;
      RETURN_IF_ERROR(get_bool(j, "use_sliding_window", &use_sliding));
      int64_t max_window_layers = c->num_hidden_layers;
      RETURN_IF_ERROR(get_int(j, "max_window_layers", &max_window_layers, false));
      if (use_sliding) {
        for (int64_t i = max_window_layers; i < c->num_hidden_layers; ++i) {
          c->layer_sliding_window[static_cast<std::size_t>(i)] = window;
        }
      }
    }
  }
  RETURN_IF_ERROR(get_id_list(j, "bos_token_id", &c->bos_token_ids));
  RETURN_IF_ERROR(get_id_list(j, "eos_token_id", &c->eos_token_ids));
  return Status::ok();
}

}  // namespace

std::string_view architecture_name(Architecture arch) {
  switch (arch) {
    case Architecture::kLlama: return "llama";
    case Architecture::kMistral: return "mistral";
    case Architecture::kQwen2: return "qwen2";
    case Architecture::kQwen3: return "qwen3";
  }
  return "?";
}

Result<ModelConfig> parse_model_config(std::string_view json_text) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::invalid_argument("not valid JSON");
  ModelConfig config;
  RETURN_IF_ERROR(parse_into(j, &config));
  return config;
}

Result<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found(path + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::io_error(path + ": read failed");
  return ss.str();
}

Result<ModelConfig> load_model_config(const std::string& model_dir) {
  const std::string path = model_dir + "/config.json";
  ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  Result<ModelConfig> config = parse_model_config(text);
  if (!config.is_ok()) return config.status().with_context(path);
  return config;
}

}  // namespace llmctl::model
