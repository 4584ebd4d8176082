// random_model_weights (--load-format dummy): every weight of the shape, in
// bf16, at transformers' default scale, deterministic for a seed, and each
// tensor-parallel rank's slice equal to the matching rows or columns of the
// whole model, padded vocabulary rows zero. (End to end through generate
// and serve: tests/integration/dummy_weights_test.py.)
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "runtime/model/model_config.h"
#include "runtime/model/random_weights.h"

using namespace llmctl::model;

namespace {

// A Qwen2-style shape with biases, an untied head and a vocabulary of 515
// rows (not divisible by 2 or 4), and a tied Llama-style one.
const char* kQwen = R"({"architectures":["Qwen2ForCausalLM"],"hidden_size":64,"intermediate_size":96,
 "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":515,
 "max_position_embeddings":256,"rms_norm_eps":1e-6,"rope_theta":10000.0,"tie_word_embeddings":false})";
const char* kLlama = R"({"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":128,
 "num_hidden_layers":2,"num_attention_heads":8,"num_key_value_heads":2,"vocab_size":300,
 "max_position_embeddings":256,"rms_norm_eps":1e-5,"rope_theta":10000.0,"tie_word_embeddings":true})";

float at(const std::vector<float>& v, const Weight& w, int64_t r, int64_t c) {
  return v[static_cast<std::size_t>(r * w.shape[1] + c)];
}

}  // namespace

TEST_CASE("random weights: every weight of the shape, bf16, norms 1, biases 0, std 0.02, seeded") {
  for (const char* json : {kQwen, kLlama}) {
    auto config = parse_model_config(json);
    REQUIRE(config.is_ok());
    auto made = random_model_weights(*config, ShardLayout::whole(*config));
    REQUIRE(made.is_ok());
    for (const WeightSpec& spec : expected_weights(*config)) {
      CAPTURE(spec.name);
      const Weight* w = made->find(spec.name);
      if (!spec.required) {
        CHECK(w == nullptr);  // the tied head is the embedding
        continue;
      }
      REQUIRE(w != nullptr);
      CHECK(w->shape == spec.shape);
      CHECK(w->dtype == DType::kBF16);
      const std::vector<float> v = w->to_f32();
      if (spec.name.ends_with("norm.weight")) {
        for (float x : v) REQUIRE(x == 1.0f);
      } else if (spec.name.ends_with(".bias")) {
        for (float x : v) REQUIRE(x == 0.0f);
      } else {
        double sum = 0, sq = 0;
        for (float x : v) {
          REQUIRE(std::fabs(x) <= 0.0347f);
          sum += x;
          sq += static_cast<double>(x) * x;
        }
        const double n = static_cast<double>(v.size()), mean = sum / n;
        CHECK(std::fabs(mean) < 0.002);
        CHECK(std::sqrt(sq / n - mean * mean) == doctest::Approx(0.02).epsilon(0.1));
      }
    }
    CHECK((made->find("model.layers.0.self_attn.q_proj.bias") != nullptr) == config->qkv_bias);
    auto again = random_model_weights(*config, ShardLayout::whole(*config));
    auto other = random_model_weights(*config, ShardLayout::whole(*config), /*seed=*/7);
    REQUIRE(again.is_ok());
    REQUIRE(other.is_ok());
    const std::string name = "model.layers.1.mlp.down_proj.weight";
    CHECK(again->find(name)->to_f32() == made->find(name)->to_f32());
    CHECK(other->find(name)->to_f32() != made->find(name)->to_f32());
    // Two tensors of one shape are not copies of each other.
    CHECK(made->find("model.layers.0.mlp.up_proj.weight")->to_f32() !=
          made->find("model.layers.0.mlp.gate_proj.weight")->to_f32());
  }
}

TEST_CASE("random weights: each rank's slice is the same model's rows and columns, padded vocabulary rows zero") {
  auto config = parse_model_config(kQwen);
  REQUIRE(config.is_ok());
  auto whole = random_model_weights(*config, ShardLayout::whole(*config));
  REQUIRE(whole.is_ok());
  const int64_t d = config->head_dim;
  const std::string p = "model.layers.1.";
  for (int tp : {2, 4}) {
    for (int rank = 0; rank < tp; ++rank) {
      CAPTURE(tp);
      CAPTURE(rank);
      auto layout = ShardLayout::make(*config, rank, tp);
      REQUIRE(layout.is_ok());
      auto part = random_model_weights(*config, *layout);
      REQUIRE(part.is_ok());
      auto check_rows = [&](const std::string& name, int64_t begin, int64_t count) {
        CAPTURE(name);
        const Weight& w = *part->find(name);
        const Weight& all = *whole->find(name);
        const std::vector<float> v = w.to_f32(), va = all.to_f32();
        REQUIRE(w.shape[1] == all.shape[1]);
        for (int64_t r = 0; r < w.shape[0]; ++r) {
          for (int64_t c = 0; c < w.shape[1]; ++c) {
            REQUIRE(at(v, w, r, c) == (r < count ? at(va, all, begin + r, c) : 0.0f));
          }
        }
      };
      auto check_columns = [&](const std::string& name, int64_t begin, int64_t count) {
        CAPTURE(name);
        const Weight& w = *part->find(name);
        const Weight& all = *whole->find(name);
        const std::vector<float> v = w.to_f32(), va = all.to_f32();
        REQUIRE(w.shape == std::vector<int64_t>{all.shape[0], count});
        for (int64_t r = 0; r < w.shape[0]; ++r) {
          for (int64_t c = 0; c < count; ++c) REQUIRE(at(v, w, r, c) == at(va, all, r, begin + c));
        }
      };
      check_rows(p + "self_attn.q_proj.weight", layout->q_head_begin * d, layout->num_q_heads * d);
      check_rows(p + "self_attn.v_proj.weight", layout->kv_head_begin * d, layout->num_kv_heads * d);
      check_rows(p + "mlp.gate_proj.weight", layout->ff_begin, layout->ff_size);
      check_columns(p + "self_attn.o_proj.weight", layout->q_head_begin * d, layout->num_q_heads * d);
      check_columns(p + "mlp.down_proj.weight", layout->ff_begin, layout->ff_size);
      const Weight& embed = *part->find("model.embed_tokens.weight");
      REQUIRE(embed.shape[0] == layout->vocab_per_rank);
      check_rows("model.embed_tokens.weight", layout->vocab_begin, layout->vocab_rows);
      check_rows("lm_head.weight", layout->vocab_begin, layout->vocab_rows);
      CHECK(part->find(p + "self_attn.k_proj.bias")->shape == std::vector<int64_t>{layout->num_kv_heads * d});
    }
  }
}

TEST_CASE("random weights: the values do not change between releases (one digest of a whole model)") {
  // Benchmarks of different releases with --load-format dummy serve the
  // same model only while the draw stays the same; this digest was taken
  // from the element-by-element draw the table-driven one replaced.
  auto config = parse_model_config(kQwen);
  REQUIRE(config.is_ok());
  auto made = random_model_weights(*config, ShardLayout::whole(*config));
  REQUIRE(made.is_ok());
  uint64_t digest = 0xcbf29ce484222325ull;  // FNV-1a over names and bytes, in expected_weights order
  for (const WeightSpec& spec : expected_weights(*config)) {
    const Weight* w = made->find(spec.name);
    if (w == nullptr) continue;
    for (char ch : spec.name) digest = (digest ^ static_cast<unsigned char>(ch)) * 0x100000001b3ull;
    const std::byte* bytes = w->data();
    for (std::size_t i = 0; i < w->size_bytes(); ++i) {
      digest = (digest ^ static_cast<uint64_t>(bytes[i])) * 0x100000001b3ull;
    }
  }
  CHECK(digest == 0xbc2fcf255a239d3dull);
}
