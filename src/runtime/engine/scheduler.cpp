#include "runtime/engine/scheduler.h"

#include <algorithm>

namespace llmctl::engine {

Status SchedulerConfig::validate() const {
  if (max_num_seqs < 1) return Status::invalid_argument("max_num_seqs must be at least 1");
  if (max_num_batched_tokens < 1) return Status::invalid_argument("max_num_batched_tokens must be at least 1");
  if (max_model_len < 1) return Status::invalid_argument("max_model_len must be at least 1");
  if (block_size < 1) return Status::invalid_argument("block_size must be at least 1");
  if (static_cast<int64_t>(num_blocks) * block_size < max_model_len) {
    return Status::invalid_argument("the KV cache (" + std::to_string(num_blocks) + " blocks of " +
                                    std::to_string(block_size) + " tokens) cannot hold one sequence of max_model_len " +
                                    std::to_string(max_model_len) + " tokens");
  }
  return Status::ok();
}

Scheduler::Scheduler(const SchedulerConfig& config)
    : config_(config), blocks_(config.num_blocks, config.block_size, config.enable_prefix_caching) {}

void Scheduler::add(Sequence* seq) {
  seq->status = SequenceStatus::kWaiting;
  waiting_.push_back(seq);
}

void Scheduler::preempt(Sequence* seq) {
  blocks_.free(*seq);
  seq->num_computed_tokens = 0;
  seq->status = SequenceStatus::kWaiting;
  waiting_.push_front(seq);
  ++num_preemptions_;
}

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput out;
  int32_t budget = config_.max_num_batched_tokens;

  // 1. Running sequences: decodes and unfinished prefill chunks.
  std::vector<Sequence*> still_running;
  for (std::size_t i = 0; i < running_.size(); ++i) {
    Sequence* seq = running_[i];
    if (budget == 0) {
      still_running.push_back(seq);
      continue;
    }
    const int32_t num_new = std::min(seq->num_tokens() - seq->num_computed_tokens, budget);
    if (num_new == 0) {
      // Its last step is still running and will end it (the engine's async
      // scheduling adds no placeholder token for a sequence at its length
      // limit): it keeps its blocks, and nothing runs for it now.
      still_running.push_back(seq);
      continue;
    }
    bool self_preempted = false;
    while (!blocks_.allocate(*seq, seq->num_computed_tokens + num_new)) {
      // Preempt from the back (the most recently admitted, not yet scheduled).
      if (running_.size() - 1 > i) {
        preempt(running_.back());
        running_.pop_back();
        ++out.num_preempted;
      } else {
        preempt(seq);
        ++out.num_preempted;
        self_preempted = true;
        break;
      }
    }
    if (self_preempted) break;
    still_running.push_back(seq);
    out.scheduled.push_back({seq, num_new, seq->num_computed_tokens + num_new == seq->num_tokens()});
    budget -= num_new;
  }
  running_ = std::move(still_running);

  // 2. Admit waiting sequences, unless this step had to preempt.
  while (out.num_preempted == 0 && budget > 0 && !waiting_.empty() &&
         static_cast<int32_t>(running_.size()) < config_.max_num_seqs) {
    Sequence* seq = waiting_.front();
    if (seq->block_table.empty()) blocks_.match_prefix(*seq);
    const int32_t num_new = std::min(seq->num_tokens() - seq->num_computed_tokens, budget);
    if (!blocks_.allocate(*seq, seq->num_computed_tokens + num_new)) {
      blocks_.free(*seq);  // give back the prefix hits; retried next step
      seq->num_computed_tokens = 0;
      break;
    }
    waiting_.pop_front();
    seq->status = SequenceStatus::kRunning;
    running_.push_back(seq);
    out.scheduled.push_back({seq, num_new, seq->num_computed_tokens + num_new == seq->num_tokens()});
    budget -= num_new;
  }
  out.num_batched_tokens = config_.max_num_batched_tokens - budget;
  return out;
}

void Scheduler::postprocess(const SchedulerOutput& out) {
  for (const ScheduledSequence& s : out.scheduled) {
    // Aborted while its step ran (async scheduling): its blocks are gone.
    if (s.seq->is_finished()) continue;
    s.seq->num_computed_tokens += s.num_new_tokens;
    blocks_.commit_full_blocks(*s.seq);
  }
}

void Scheduler::remove(Sequence* seq) {
  blocks_.free(*seq);
  running_.erase(std::remove(running_.begin(), running_.end(), seq), running_.end());
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), seq), waiting_.end());
}

}  // namespace llmctl::engine
