// Step count and time by step size, for LLMCTL_STEP_TIMING's exit report:
// bucket i takes sizes up to limits[i] (the last limit INT64_MAX), so a
// serving run shows which kind of step costs what — eager steps by their
// tokens, decode graph steps by their sequences (a ShareGPT-like run's long
// tail is its small decode batches).
#pragma once

#include <cstdint>
#include <string>

namespace llmctl::engine {

struct StepSizeHistogram {
  static constexpr int kBuckets = 5;
  int64_t limits[kBuckets];
  int64_t steps[kBuckets] = {}, sizes[kBuckets] = {};
  double ms[kBuckets] = {};

  void add(int64_t size, double step_ms);
  // "1-64 tokens: 3 steps, 120 tokens, 4.2 ms; 4097- tokens: ..." over the
  // buckets that saw a step; empty when none did.
  std::string describe(const char* unit) const;
  int64_t total_steps() const;
  double total_ms() const;
};

}  // namespace llmctl::engine
