#include <doctest/doctest.h>

#include "runtime/model/generation_config.h"
#include "runtime/model/model_config.h"

using namespace llmctl::model;

TEST_CASE("stories260K config.json (transformers 5 rope_parameters spelling)") {
  auto c = load_model_config(std::string(LLMCTL_SHARED_DIR) + "/assets/stories260K");
  REQUIRE_MESSAGE(c.is_ok(), c.status().to_string());
  CHECK(c->architecture == Architecture::kLlama);
  CHECK(c->hidden_size == 64);
  CHECK(c->num_attention_heads == 8);
  CHECK(c->num_key_value_heads == 4);
  CHECK(c->head_dim == 8);
  CHECK(c->intermediate_size == 172);
  CHECK(c->num_hidden_layers == 5);
  CHECK(c->vocab_size == 512);
  CHECK(c->tie_word_embeddings);
  CHECK(c->rope.theta == 10000.0);
  CHECK(c->rope.type == RopeConfig::Type::kDefault);
  CHECK(c->rms_norm_eps == doctest::Approx(1e-5));
  CHECK(c->torch_dtype == "float32");
  CHECK(c->eos_token_ids == std::vector<int64_t>{2});
  CHECK(c->max_position_embeddings == 512);
}

TEST_CASE("classic spelling with llama3 rope scaling, eos list, torch_dtype") {
  auto c = parse_model_config(R"({"architectures":["LlamaForCausalLM"],"hidden_size":2048,
    "intermediate_size":8192,"num_hidden_layers":16,"num_attention_heads":32,"num_key_value_heads":8,
    "vocab_size":128256,"rope_theta":500000.0,"torch_dtype":"bfloat16","max_position_embeddings":131072,
    "rope_scaling":{"factor":32.0,"high_freq_factor":4.0,"low_freq_factor":1.0,
    "original_max_position_embeddings":8192,"rope_type":"llama3"},"tie_word_embeddings":true,
    "eos_token_id":[128001,128008,128009],"rms_norm_eps":1e-5})");
  REQUIRE_MESSAGE(c.is_ok(), c.status().to_string());
  CHECK(c->head_dim == 64);
  CHECK(c->rope.type == RopeConfig::Type::kLlama3);
  CHECK(c->rope.theta == 500000.0);
  CHECK(c->rope.factor == 32.0);
  CHECK(c->rope.original_max_position_embeddings == 8192);
  CHECK(c->torch_dtype == "bfloat16");
  CHECK(c->eos_token_ids == std::vector<int64_t>{128001, 128008, 128009});
  CHECK_FALSE(c->qkv_bias);
}

TEST_CASE("transformers 5 rope_parameters with llama3 scaling") {
  auto c = parse_model_config(R"({"architectures":["LlamaForCausalLM"],"hidden_size":64,
    "intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100,"dtype":"float16",
    "rope_parameters":{"rope_type":"llama3","rope_theta":50000.0,"factor":8.0,"low_freq_factor":1.0,
    "high_freq_factor":4.0,"original_max_position_embeddings":64}})");
  REQUIRE_MESSAGE(c.is_ok(), c.status().to_string());
  CHECK(c->rope.type == RopeConfig::Type::kLlama3);
  CHECK(c->rope.theta == 50000.0);
  CHECK(c->rope.factor == 8.0);
  CHECK(c->rope.original_max_position_embeddings == 64);
  CHECK(c->torch_dtype == "float16");
  CHECK(c->num_key_value_heads == 4);
  CHECK_FALSE(c->tie_word_embeddings);
}

TEST_CASE("Qwen2 has qkv bias, Qwen3 has q/k norm and explicit head_dim, Mistral sliding window") {
  auto q2 = parse_model_config(R"({"architectures":["Qwen2ForCausalLM"],"hidden_size":64,"intermediate_size":128,
    "num_hidden_layers":3,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":100,"sliding_window":32,
    "use_sliding_window":true,"max_window_layers":2})");
  REQUIRE_MESSAGE(q2.is_ok(), q2.status().to_string());
  CHECK(q2->qkv_bias);
  CHECK_FALSE(q2->o_bias);
  CHECK_FALSE(q2->qk_norm);
  CHECK(q2->layer_sliding_window == std::vector<int64_t>{0, 0, 32});

  auto q3 = parse_model_config(R"({"architectures":["Qwen3ForCausalLM"],"hidden_size":64,"intermediate_size":128,
    "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"head_dim":32,"vocab_size":100,
    "sliding_window":null,"use_sliding_window":false,"attention_bias":false})");
  REQUIRE_MESSAGE(q3.is_ok(), q3.status().to_string());
  CHECK(q3->qk_norm);
  CHECK(q3->head_dim == 32);
  CHECK(q3->q_size() == 128);
  CHECK(q3->layer_sliding_window == std::vector<int64_t>{0, 0});

  auto m = parse_model_config(R"({"architectures":["MistralForCausalLM"],"hidden_size":64,"intermediate_size":128,
    "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":1,"vocab_size":100,"sliding_window":4096})");
  REQUIRE_MESSAGE(m.is_ok(), m.status().to_string());
  CHECK(m->layer_sliding_window == std::vector<int64_t>{4096, 4096});
}

TEST_CASE("config errors name the key") {
  auto unknown = parse_model_config(R"({"architectures":["GPT2LMHeadModel"]})");
  CHECK(unknown.status().code() == llmctl::StatusCode::kUnimplemented);
  CHECK(unknown.status().message().find("GPT2LMHeadModel") != std::string::npos);

  auto missing = parse_model_config(R"({"architectures":["LlamaForCausalLM"],"vocab_size":9,"hidden_size":64})");
  CHECK(missing.status().message().find("intermediate_size") != std::string::npos);

  auto bad_gqa = parse_model_config(R"({"architectures":["LlamaForCausalLM"],"hidden_size":64,
    "intermediate_size":1,"num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":3,"vocab_size":1})");
  CHECK(bad_gqa.status().message().find("num_key_value_heads") != std::string::npos);

  auto wrong_type = parse_model_config(R"({"architectures":["LlamaForCausalLM"],"vocab_size":9,"hidden_size":"64"})");
  CHECK(wrong_type.status().message().find("hidden_size") != std::string::npos);

  auto yarn = parse_model_config(R"({"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":1,
    "num_hidden_layers":1,"num_attention_heads":4,"vocab_size":1,"rope_scaling":{"rope_type":"yarn","factor":4}})");
  CHECK(yarn.status().code() == llmctl::StatusCode::kUnimplemented);

  CHECK_FALSE(parse_model_config("{not json").is_ok());
  CHECK(load_model_config("/nonexistent/dir").status().code() == llmctl::StatusCode::kNotFound);
}

TEST_CASE("generation_config.json: eos as int or list, sampling defaults") {
  auto g = parse_generation_config(R"({"do_sample":true,"temperature":0.6,"top_p":0.9,"top_k":20,
    "eos_token_id":[151645,151643],"bos_token_id":1})");
  REQUIRE(g.is_ok());
  CHECK(*g->do_sample);
  CHECK(*g->temperature == doctest::Approx(0.6));
  CHECK(*g->top_k == 20);
  CHECK(g->eos_token_ids == std::vector<int64_t>{151645, 151643});
  auto single = parse_generation_config(R"({"eos_token_id":2})");
  REQUIRE(single.is_ok());
  CHECK(single->eos_token_ids == std::vector<int64_t>{2});
  CHECK_FALSE(single->temperature.has_value());
  CHECK_FALSE(parse_generation_config(R"({"eos_token_id":"x"})").is_ok());
  auto missing = load_generation_config("/nonexistent");
  CHECK(missing.is_ok());
}
