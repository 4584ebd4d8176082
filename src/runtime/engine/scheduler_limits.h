// The scheduler's batch limits when the user sets none (serve's
// --max-num-seqs / --max-num-batched-tokens left out): they depend on the
// device, so they are resolved once the backend is known. A GPU of 70 GiB or
// more (H100, H200) runs 1,024 sequences and 8,192 tokens a step, as vLLM
// does there: an 8B model's decode step only nears the FLOP limit past a few
// hundred rows, and a ShareGPT-like load ran 5 % faster than at 256 / 2,048
// (docs/performance.md, session 8). A smaller GPU gets 256 / 2,048; the CPU
// keeps 64 sequences, since its attention cost grows with every row.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/engine/scheduler.h"

namespace llmctl::engine {

struct SchedulerLimits {
  int32_t max_num_seqs = 0;
  int32_t max_num_batched_tokens = 0;
};

// device_total_bytes: the device's memory (0: the host, i.e. the CPU backend).
// The token budget is at least max_model_len, so a full-length prompt is one
// step.
SchedulerLimits default_scheduler_limits(uint64_t device_total_bytes, int32_t max_model_len);

// The rule above in words, for serve's --help, so the numbers live in one
// place: "by device: 1024 on a GPU of 70 GiB or more, ...".
std::string default_max_num_seqs_help();
std::string default_max_num_batched_tokens_help();

// Fills the limits of `config` that are 0 ("the device's default") and
// returns a line for the log naming them and where they came from; "" when
// both were set.
std::string resolve_scheduler_limits(SchedulerConfig& config, uint64_t device_total_bytes);

}  // namespace llmctl::engine
