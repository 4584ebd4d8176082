// Continuous batching: every step picks which sequences run and how many of
// their tokens, within max_num_seqs running sequences and
// max_num_batched_tokens tokens. Running sequences go first (a decode is one
// token; an unfinished prefill continues as a chunk), then waiting ones are
// admitted, their prompt chunked to what the token budget leaves. When blocks
// run out, the most recently admitted running sequence is preempted: its
// blocks are released and it recomputes later (prefix-cache hits make that
// cheap). Sequences join and leave at every step.
//
// Touched only on the engine thread. Does not own the sequences.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "common/status.h"
#include "runtime/engine/block_manager.h"
#include "runtime/engine/sequence.h"

namespace llmctl::engine {

struct SchedulerConfig {
  // 0 in either limit: the device's default, filled in by Engine::create
  // (scheduler_limits.h); the Scheduler itself needs both set.
  int32_t max_num_seqs = 256;
  int32_t max_num_batched_tokens = 2048;
  int32_t max_model_len = 2048;
  int32_t block_size = 16;
  int32_t num_blocks = 0;  // KV cache blocks (the memory budget)
  bool enable_prefix_caching = true;

  Status validate() const;
};

struct ScheduledSequence {
  Sequence* seq = nullptr;
  int32_t num_new_tokens = 0;  // computes tokens [num_computed_tokens, + num_new_tokens)
  bool sample = false;         // the chunk reaches the last token: sample the next one
};

struct SchedulerOutput {
  std::vector<ScheduledSequence> scheduled;
  int32_t num_batched_tokens = 0;
  int32_t num_preempted = 0;
  bool empty() const { return scheduled.empty(); }
};

class Scheduler {
 public:
  explicit Scheduler(const SchedulerConfig& config);

  const SchedulerConfig& config() const { return config_; }
  BlockManager& block_manager() { return blocks_; }
  const BlockManager& block_manager() const { return blocks_; }

  void add(Sequence* seq);
  SchedulerOutput schedule();
  // Once `out` is enqueued on the model (it may still be running): advances
  // num_computed_tokens and caches full blocks, skipping finished sequences.
  // A running sequence with no token left to compute (its step in flight
  // ends it) stays running but is not scheduled.
  void postprocess(const SchedulerOutput& out);
  // Removes a finished or aborted sequence and frees its blocks at once.
  void remove(Sequence* seq);

  bool has_unfinished() const { return !running_.empty() || !waiting_.empty(); }
  std::size_t num_running() const { return running_.size(); }
  std::size_t num_waiting() const { return waiting_.size(); }
  uint64_t num_preemptions() const { return num_preemptions_; }

 private:
  void preempt(Sequence* seq);

  SchedulerConfig config_;
  BlockManager blocks_;
  std::vector<Sequence*> running_;  // admission order
  std::deque<Sequence*> waiting_;   // preempted ones at the front
  uint64_t num_preemptions_ = 0;
};

}  // namespace llmctl::engine
