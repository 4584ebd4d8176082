// load_model_weights with a ShardLayout: every slice equals the matching rows
// or columns of the whole load and has the slice's shape. (Padded vocabulary
// rows end to end: tests/integration/tp_generate_test.py, vocabulary 515.)
#include <doctest/doctest.h>

#include <string>

#include "runtime/model/model_weights.h"

using namespace llmctl::model;

namespace {

const std::string kStories = std::string(LLMCTL_SHARED_DIR) + "/assets/stories260K";

// w[r, c] of a row-major [rows, cols] weight.
float at(const Weight& w, int64_t r, int64_t c) { return w.to_f32()[static_cast<std::size_t>(r * w.shape[1] + c)]; }

}  // namespace

TEST_CASE("sharded load: each rank's slices equal the whole model's rows and columns") {
  auto config = load_model_config(kStories);
  REQUIRE(config.is_ok());
  auto whole = load_model_weights(kStories, *config);
  REQUIRE(whole.is_ok());
  const int64_t d = config->head_dim;
  for (int tp : {2, 4}) {
    for (int rank = 0; rank < tp; ++rank) {
      CAPTURE(tp);
      CAPTURE(rank);
      auto layout = ShardLayout::make(*config, rank, tp);
      REQUIRE(layout.is_ok());
      auto part = load_model_weights(kStories, *config, *layout);
      REQUIRE(part.is_ok());
      CHECK(part->total_bytes() < whole->total_bytes());
      const std::string p = "model.layers.3.";
      const Weight& q = *part->find(p + "self_attn.q_proj.weight");
      const Weight& q_all = *whole->find(p + "self_attn.q_proj.weight");
      REQUIRE(q.shape == std::vector<int64_t>{layout->num_q_heads * d, config->hidden_size});
      for (int64_t r = 0; r < q.shape[0]; ++r) CHECK(at(q, r, 5) == at(q_all, layout->q_head_begin * d + r, 5));
      const Weight& k = *part->find(p + "self_attn.k_proj.weight");
      const Weight& k_all = *whole->find(p + "self_attn.k_proj.weight");
      REQUIRE(k.shape[0] == layout->num_kv_heads * d);
      CHECK(at(k, k.shape[0] - 1, 7) == at(k_all, (layout->kv_head_begin + layout->num_kv_heads) * d - 1, 7));
      const Weight& o = *part->find(p + "self_attn.o_proj.weight");
      const Weight& o_all = *whole->find(p + "self_attn.o_proj.weight");
      REQUIRE(o.shape == std::vector<int64_t>{config->hidden_size, layout->num_q_heads * d});
      for (int64_t c = 0; c < o.shape[1]; ++c) CHECK(at(o, 9, c) == at(o_all, 9, layout->q_head_begin * d + c));
      const Weight& down = *part->find(p + "mlp.down_proj.weight");
      const Weight& down_all = *whole->find(p + "mlp.down_proj.weight");
      REQUIRE(down.shape == std::vector<int64_t>{config->hidden_size, layout->ff_size});
      CHECK(at(down, 2, layout->ff_size - 1) == at(down_all, 2, layout->ff_begin + layout->ff_size - 1));
      const Weight& up = *part->find(p + "mlp.up_proj.weight");
      CHECK(at(up, 0, 1) == at(*whole->find(p + "mlp.up_proj.weight"), layout->ff_begin, 1));
      const Weight& embed = *part->find("model.embed_tokens.weight");
      REQUIRE(embed.shape == std::vector<int64_t>{layout->vocab_per_rank, config->hidden_size});
      CHECK(at(embed, 1, 3) == at(*whole->find("model.embed_tokens.weight"), layout->vocab_begin + 1, 3));
      CHECK(part->find("model.norm.weight")->to_f32() == whole->find("model.norm.weight")->to_f32());
    }
  }
}

TEST_CASE("sharded layout: a vocabulary that does not divide is padded on the last rank") {
  auto config = load_model_config(kStories);
  REQUIRE(config.is_ok());
  // 512 rows over 3 ranks: 171 per rank, the last holds 170 real rows.
  ModelConfig c = *config;
  c.num_attention_heads = 6;
  c.num_key_value_heads = 3;
  c.intermediate_size = 6;
  auto layout = ShardLayout::make(c, 2, 3);
  REQUIRE(layout.is_ok());
  CHECK(layout->vocab_per_rank == 171);
  CHECK(layout->vocab_begin == 342);
  CHECK(layout->vocab_rows == 170);
}
