// The architecture settings of a Hugging Face model folder (config.json), for
// the decoder-only families llmctl runs: LlamaForCausalLM, MistralForCausalLM,
// Qwen2ForCausalLM and Qwen3ForCausalLM. Parsed once, validated, then read-only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace llmctl::model {

enum class Architecture { kLlama, kMistral, kQwen2, kQwen3 };

std::string_view architecture_name(Architecture arch);

// RoPE as transformers applies it. Accepts both spellings of config.json: the
// classic top-level `rope_theta` + `rope_scaling` and transformers 5's
// `rope_parameters` block.
struct RopeConfig {
  enum class Type { kDefault, kLinear, kLlama3 };
  Type type = Type::kDefault;
  double theta = 10000.0;
  double factor = 1.0;                  // linear and llama3
  double low_freq_factor = 1.0;         // llama3
  double high_freq_factor = 4.0;        // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3
};

struct ModelConfig {
  Architecture architecture = Architecture::kLlama;
  std::string architecture_string;  // as written in config.json, e.g. "Qwen2ForCausalLM"
  std::string torch_dtype = "float32";  // "dtype" (transformers 5) or "torch_dtype"

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // GQA; defaults to num_attention_heads
  int64_t head_dim = 0;             // defaults to hidden_size / num_attention_heads
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  RopeConfig rope;

  bool tie_word_embeddings = false;
  bool qkv_bias = false;     // bias on q/k/v projections (always on for Qwen2)
  bool o_bias = false;       // bias on the output projection (Llama attention_bias)
  bool qk_norm = false;      // RMSNorm on q and k per head (Qwen3)
  // Per layer: 0 = full attention, else the sliding window size in tokens
  // (a query at position p sees keys in (p - window, p]).
  std::vector<int64_t> layer_sliding_window;

  std::vector<int64_t> bos_token_ids;
  std::vector<int64_t> eos_token_ids;

  int64_t q_size() const { return num_attention_heads * head_dim; }
  int64_t kv_size() const { return num_key_value_heads * head_dim; }
};

// Parses the text of a config.json; errors name the offending key.
Result<ModelConfig> parse_model_config(std::string_view json_text);

// Reads <model_dir>/config.json.
Result<ModelConfig> load_model_config(const std::string& model_dir);

// Reads a whole file into a string; NOT_FOUND / IO_ERROR name the path.
Result<std::string> read_text_file(const std::string& path);

}  // namespace llmctl::model
