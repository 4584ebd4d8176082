// The host twins of the sharded greedy pick (kernels.h: argmax_with_value,
// merge_argmax): the CPU backend's ops and the CUDA kernels' reference.
#include <bit>
#include <cstdint>
#include <limits>

#include "kernels/kernels.h"

namespace llmctl::kernels {
namespace {

// Whether (v, i) beats the best so far (b, bi): a number beats NaN, a larger
// value wins, and on equal values the lower index (the first maximum).
bool better(float v, int64_t i, float b, int64_t bi) {
  if (v != v) return false;
  if (b != b) return true;
  return v > b || (v == b && i < bi);
}

}  // namespace

void Backend::argmax_with_value_on_host(float* pairs, const float* logits, int64_t rows, int64_t row_stride,
                                        int64_t valid, int64_t index_base) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = logits + r * row_stride;
    float best = std::numeric_limits<float>::quiet_NaN();
    int64_t at = -1;
    for (int64_t i = 0; i < valid; ++i) {
      if (better(row[i], i, best, at)) {
        best = row[i];
        at = i;
      }
    }
    pairs[2 * r] = best;
    pairs[2 * r + 1] = std::bit_cast<float>(static_cast<int32_t>(at < 0 ? -1 : index_base + at));
  }
}

void Backend::merge_argmax_on_host(int32_t* ids, const float* pairs, int64_t num_shards, int64_t rows) {
  for (int64_t r = 0; r < rows; ++r) {
    float best = std::numeric_limits<float>::quiet_NaN();
    int64_t at = -1;
    for (int64_t s = 0; s < num_shards; ++s) {
      const float* p = pairs + 2 * (s * rows + r);
      const int32_t index = std::bit_cast<int32_t>(p[1]);
      if (index >= 0 && better(p[0], index, best, at)) {
        best = p[0];
        at = index;
      }
    }
    ids[r] = static_cast<int32_t>(at < 0 ? 0 : at);
  }
}

}  // namespace llmctl::kernels
