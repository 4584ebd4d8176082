#include "runtime/model/shard_layout.h"

#include <algorithm>

namespace llmctl::model {

namespace {

std::string not_divisible(const char* what, int64_t count, int world_size) {
  return std::string(what) + " " + std::to_string(count) + " is not divisible by --tp " + std::to_string(world_size);
}

}  // namespace

ShardLayout ShardLayout::whole(const ModelConfig& c) {
  ShardLayout s;
  s.num_q_heads = c.num_attention_heads;
  s.num_kv_heads = c.num_key_value_heads;
  s.ff_size = c.intermediate_size;
  s.vocab_per_rank = s.vocab_rows = c.vocab_size;
  return s;
}

Result<ShardLayout> ShardLayout::make(const ModelConfig& c, int rank, int world_size) {
  if (world_size < 1) return Status::invalid_argument("--tp must be at least 1, got " + std::to_string(world_size));
  if (rank < 0 || rank >= world_size) {
    return Status::invalid_argument("rank " + std::to_string(rank) + " is outside [0, " + std::to_string(world_size) +
                                    ")");
  }
  if (world_size == 1) return whole(c);
  const int64_t n = world_size;
  if (c.num_attention_heads % n != 0) {
    return Status::invalid_argument(not_divisible("num_attention_heads", c.num_attention_heads, world_size));
  }
  const int64_t kvh = c.num_key_value_heads;
  if (kvh >= n ? kvh % n != 0 : n % kvh != 0) {
    return Status::invalid_argument("num_key_value_heads " + std::to_string(kvh) +
                                    " must divide or be divisible by --tp " + std::to_string(world_size));
  }
  if (c.intermediate_size % n != 0) {
    return Status::invalid_argument(not_divisible("intermediate_size", c.intermediate_size, world_size));
  }
  ShardLayout s;
  s.rank = rank;
  s.world_size = world_size;
  s.num_q_heads = c.num_attention_heads / n;
  s.q_head_begin = rank * s.num_q_heads;
  if (kvh >= n) {
    s.num_kv_heads = kvh / n;
    s.kv_head_begin = rank * s.num_kv_heads;
  } else {
    // Fewer KV heads than ranks: this rank's query heads all read one KV
    // head (n % kvh == 0 makes the group boundaries line up).
    s.num_kv_heads = 1;
    s.kv_head_begin = s.q_head_begin / (c.num_attention_heads / kvh);
  }
  s.ff_size = c.intermediate_size / n;
  s.ff_begin = rank * s.ff_size;
  s.vocab_per_rank = (c.vocab_size + n - 1) / n;
  s.vocab_begin = std::min<int64_t>(c.vocab_size, rank * s.vocab_per_rank);
  s.vocab_rows = std::min<int64_t>(c.vocab_size - s.vocab_begin, s.vocab_per_rank);
  return s;
}

}  // namespace llmctl::model
