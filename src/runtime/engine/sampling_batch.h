// The host half of sampling on the device: for the rows of a step, the
// per-row settings and the token lists (penalties, the min_tokens mask) that
// Backend::sample_rows reads, built from each sequence's state. The draws
// come from the sequences' own generators, one per non-greedy row as
// Sampler::sample takes them, so a seeded sequence stays reproducible.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/kernels.h"
#include "runtime/engine/sequence.h"

namespace llmctl::engine {

struct SamplingBatch {
  std::vector<kernels::SamplingRowParams> params;  // one per row, in row order
  std::vector<int32_t> seen_tokens;
  std::vector<int32_t> seen_output_counts;
  std::vector<int32_t> banned_tokens;

  // True when sample_rows can stand in for Sampler::sample on seq: it asks
  // for no logprobs (those need the whole row on the host).
  static bool supports(const Sequence& seq);
  // Appends seq's row; draws its uniform from seq.rng unless it is greedy.
  void add(Sequence& seq, const std::vector<int32_t>& eos_ids);
  int64_t rows() const { return static_cast<int64_t>(params.size()); }
  // The batch as sample_rows reads it, pointing into these vectors (for the
  // host twin on host logits).
  kernels::SamplingRows host_view(int64_t vocab) const;
};

}  // namespace llmctl::engine
