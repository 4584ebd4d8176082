// One engine step as the model sees it: host-side token ids, positions, KV
// slots, attention layout and the rows that need logits. Built by rank 0 from
// the scheduler's output and sent as bytes to the other tensor-parallel ranks,
// which run the same forward pass on it. Plain data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "runtime/engine/scheduler.h"

namespace llmctl::engine {

struct StepBatch {
  int32_t max_blocks_per_seq = 1;
  std::vector<int32_t> token_ids;       // [T]
  std::vector<int32_t> positions;       // [T]
  std::vector<int32_t> slot_mapping;    // [T]
  std::vector<int32_t> query_start;     // [num_seqs + 1]
  std::vector<int32_t> context_len;     // [num_seqs]
  std::vector<int32_t> block_tables;    // [num_seqs, max_blocks_per_seq]
  std::vector<int32_t> logits_indices;  // rows of T that sample
  // Every sampling row is plain greedy: the ranks exchange only each row's
  // (maximum, index) of their vocabulary slice, not the logits, so all of
  // them must know (DecoderModel::forward's greedy_ids).
  bool greedy = false;

  int64_t num_tokens() const { return static_cast<int64_t>(token_ids.size()); }
  int32_t num_seqs() const { return static_cast<int32_t>(context_len.size()); }

  static StepBatch from_schedule(const SchedulerOutput& out, int32_t block_size);
};

// What rank 0 broadcasts to the other ranks, one message per collective call.
struct RankMessage {
  enum class Kind : int32_t { kInit = 1, kStep = 2, kStop = 3, kGraphs = 4 };
  Kind kind = Kind::kStep;
  int32_t num_blocks = 0, block_size = 0;  // kInit: the KV cache every rank allocates
  // kGraphs: every rank replays decode graphs from now on (enable_decode_graphs).
  int32_t max_num_seqs = 0, max_model_len = 0;
  StepBatch batch;                         // kStep

  std::string encode() const;
  // Fails naming what is wrong with a message that did not come from encode().
  static Result<RankMessage> decode(const std::string& bytes);
};

}  // namespace llmctl::engine
