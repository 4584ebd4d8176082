// Which slice of the model one tensor-parallel rank holds. Attention is split
// by heads (KV heads replicated when there are fewer of them than ranks: each
// rank keeps the one its query heads read), the MLP by intermediate columns,
// and the embedding and LM head by vocabulary rows. The vocabulary is padded
// to a multiple of world_size; padded rows are zero and their logits are
// dropped when the ranks' slices are joined. Plain data, made once at load.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "runtime/model/model_config.h"

namespace llmctl::model {

struct ShardLayout {
  int rank = 0;
  int world_size = 1;
  int64_t q_head_begin = 0, num_q_heads = 0;
  int64_t kv_head_begin = 0, num_kv_heads = 0;
  int64_t ff_begin = 0, ff_size = 0;
  // Rows [vocab_begin, vocab_begin + vocab_rows) of the full vocabulary live
  // on this rank, inside a table of vocab_per_rank rows (the rest zero).
  int64_t vocab_per_rank = 0, vocab_begin = 0, vocab_rows = 0;

  bool sharded() const { return world_size > 1; }

  // The layout of `rank` of `world_size`. Fails naming the count that does
  // not divide ("num_attention_heads 6 is not divisible by --tp 4").
  static Result<ShardLayout> make(const ModelConfig& config, int rank, int world_size);
  // The whole model (world_size 1).
  static ShardLayout whole(const ModelConfig& config);
};

}  // namespace llmctl::model
