// The sharded greedy pick (argmax_with_value on each rank's vocabulary
// slice, the pairs gathered, merge_argmax) against argmax_rows over the
// joined rows, as the CPU backend runs it: ties across and within shards,
// NaN, padded columns holding the largest values, a rank with no vocabulary,
// and seeded random rows full of repeated values.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "kernels/kernels.h"

using namespace llmctl::kernels;

namespace {

constexpr float kPadding = 1e30f;  // larger than any real logit: must still never win

// ids of rows [rows, vocab] as world_size ranks pick them: each rank's slice
// of ceil(vocab / world) columns (the last ones padded with kPadding), its
// pairs stacked in rank order as all_gather leaves them, then merged.
std::vector<int32_t> sharded_ids(Backend& backend, const std::vector<float>& logits, int64_t rows, int64_t vocab,
                                 int64_t world) {
  const int64_t per_rank = (vocab + world - 1) / world;
  std::vector<float> gathered(static_cast<std::size_t>(world * rows * 2), -5.0f);
  for (int64_t r = 0; r < world; ++r) {
    const int64_t begin = r * per_rank;
    const int64_t valid = std::clamp<int64_t>(vocab - begin, 0, per_rank);
    std::vector<float> slice(static_cast<std::size_t>(rows * per_rank), kPadding);
    for (int64_t n = 0; n < rows; ++n) {
      std::copy_n(logits.begin() + n * vocab + begin, valid, slice.begin() + n * per_rank);
    }
    // Guards on both sides of this rank's pairs.
    std::vector<float> pairs(static_cast<std::size_t>(rows * 2 + 4), 777.0f);
    backend.argmax_with_value(pairs.data() + 2, slice.data(), rows, per_rank, valid, begin);
    CHECK(pairs[0] == 777.0f);
    CHECK(pairs[1] == 777.0f);
    CHECK(pairs[pairs.size() - 1] == 777.0f);
    CHECK(pairs[pairs.size() - 2] == 777.0f);
    std::copy(pairs.begin() + 2, pairs.end() - 2, gathered.begin() + r * rows * 2);
  }
  std::vector<int32_t> ids(static_cast<std::size_t>(rows + 2), -9);
  backend.merge_argmax(ids.data() + 1, gathered.data(), world, rows);
  CHECK(ids.front() == -9);
  CHECK(ids.back() == -9);
  return {ids.begin() + 1, ids.end() - 1};
}

std::vector<int32_t> joined_ids(const std::vector<float>& logits, int64_t rows, int64_t vocab) {
  std::vector<int32_t> ids(static_cast<std::size_t>(rows));
  Backend::argmax_rows_on_host(ids.data(), logits.data(), rows, vocab);
  return ids;
}

}  // namespace

TEST_CASE("sharded argmax: pairs hold the slice's first maximum and its global index") {
  auto cpu = make_cpu_backend(1);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // Two rows of a slice of 5 columns, the last one padding; the slice starts at 100.
  const std::vector<float> slice = {1.0f, 3.0f, 3.0f, -2.0f, kPadding, nan, nan, nan, nan, kPadding};
  std::vector<float> pairs(4);
  cpu->argmax_with_value(pairs.data(), slice.data(), 2, 5, 4, 100);
  CHECK(pairs[0] == 3.0f);
  CHECK(std::bit_cast<int32_t>(pairs[1]) == 101);
  CHECK(std::isnan(pairs[2]));  // nothing but NaN: no candidate
  CHECK(std::bit_cast<int32_t>(pairs[3]) == -1);
  // A rank without vocabulary rows (valid 0) offers no candidate either.
  cpu->argmax_with_value(pairs.data(), slice.data(), 1, 5, 0, 100);
  CHECK(std::bit_cast<int32_t>(pairs[1]) == -1);
}

TEST_CASE("sharded argmax: the merge equals argmax over the joined row") {
  auto cpu = make_cpu_backend(1);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const int64_t vocab = 10;
  // Each row of 10 columns, split over 4 ranks as 3 + 3 + 3 + 1 (+ 2 padding).
  const std::vector<std::vector<float>> rows = {
      {0, 1, 2, 9, 4, 5, 6, 9, 8, 9},                        // ties in shards 1, 2 and 3: index 3
      {9, 1, 2, 3, 4, 5, 6, 7, 8, 9},                        // ties in shard 0 and the last: index 0
      {0, 7, 7, 1, 1, 1, 1, 1, 1, 1},                        // a tie inside shard 0: index 1
      {nan, nan, nan, nan, -1, nan, nan, nan, nan, nan},     // NaN everywhere but one
      {nan, nan, nan, nan, nan, nan, nan, nan, nan, nan},    // all NaN: 0, as argmax_rows answers
      {-5, -4, -3, -2, -1, -6, -7, -8, -9, -1},              // all negative: padding (and 0) never win
      {-inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf},  // all -inf: 0
      {nan, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, inf},    // +inf in the last shard
      {1, 1, 1, 1, 1, 1, 1, 1, 1, 1},                        // all equal: 0
  };
  std::vector<float> logits;
  for (const auto& r : rows) logits.insert(logits.end(), r.begin(), r.end());
  const auto n = static_cast<int64_t>(rows.size());
  const std::vector<int32_t> want = {3, 0, 1, 4, 0, 4, 0, 9, 0};
  REQUIRE(joined_ids(logits, n, vocab) == want);  // the reference agrees with the comments
  for (int64_t world : {1, 2, 3, 4, 5, 7, 10, 12}) {
    CAPTURE(world);
    CHECK(sharded_ids(*cpu, logits, n, vocab, world) == want);
  }
}

TEST_CASE("sharded argmax: seeded random rows with repeated values match the joined argmax") {
  auto cpu = make_cpu_backend(1);
  std::mt19937 rng(9);
  for (const int64_t vocab : {1, 2, 7, 64, 1001, 32003}) {
    const int64_t rows = 23;
    // Few distinct values, so rows hold the maximum several times.
    std::uniform_int_distribution<int> level(-6, 6);
    std::uniform_int_distribution<int64_t> col(0, vocab - 1);
    std::vector<float> logits(static_cast<std::size_t>(rows * vocab));
    for (float& x : logits) x = static_cast<float>(level(rng)) * 0.5f;
    for (int64_t r = 0; r < rows; ++r) {
      float* row = logits.data() + r * vocab;
      if (r % 4 == 0) row[col(rng)] = std::numeric_limits<float>::quiet_NaN();
      if (r % 5 == 1) std::fill(row, row + vocab, -2.5f);
      if (r % 6 == 2) row[col(rng)] = row[col(rng)] = 100.0f;
    }
    const auto want = joined_ids(logits, rows, vocab);
    for (int64_t world : {1, 2, 3, 4, 8}) {
      CAPTURE(vocab);
      CAPTURE(world);
      CHECK(sharded_ids(*cpu, logits, rows, vocab, world) == want);
    }
  }
}
