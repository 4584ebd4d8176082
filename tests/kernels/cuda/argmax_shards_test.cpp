// The CUDA sharded greedy pick (argmax_shards.cu) against its CPU twin and
// against argmax over the joined rows: per rank's padded vocabulary slice,
// then the merge of the gathered pairs, with guard regions around every
// output, ties across shards, NaN and padding that holds the largest values.
#include <bit>
#include <limits>

#include "cuda_test_util.h"

using namespace llmctl::kernels;
using namespace llmctl::kernels::test;

TEST_CASE("cuda argmax_with_value and merge_argmax equal argmax over the joined vocabulary") {
  Backends b;
  std::mt19937 rng(21);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const int64_t vocab : {5, 1000, 128256, 151936}) {
    for (const int64_t world : {2, 4, 8}) {
      CAPTURE(vocab);
      CAPTURE(world);
      const int64_t rows = 67, per_rank = (vocab + world - 1) / world;
      // Coarse values so maxima repeat, within and across shards.
      std::uniform_int_distribution<int> level(-40, 40);
      std::uniform_int_distribution<int64_t> col(0, vocab - 1);
      std::vector<float> logits(static_cast<std::size_t>(rows * vocab));
      for (float& x : logits) x = static_cast<float>(level(rng)) * 0.25f;
      for (int64_t r = 0; r < rows; ++r) {
        float* row = logits.data() + r * vocab;
        if (r % 3 == 0) row[col(rng)] = row[col(rng)] = 50.0f;  // the maximum twice
        if (r % 7 == 0) row[col(rng)] = nan;
        if (r == 5) std::fill(row, row + vocab, -3.0f);  // all equal: 0
        if (r == 6) std::fill(row, row + vocab, nan);    // all NaN: 0
        if (r == 8) std::fill(row, row + vocab, -1.0f), row[vocab - 1] = -0.5f;  // the last column
      }
      std::vector<int32_t> want(static_cast<std::size_t>(rows));
      Backend::argmax_rows_on_host(want.data(), logits.data(), rows, vocab);

      std::vector<float> gathered_cpu, gathered_gpu;
      for (int64_t r = 0; r < world; ++r) {
        const int64_t begin = r * per_rank;
        const int64_t valid = std::clamp<int64_t>(vocab - begin, 0, per_rank);
        // Padding columns hold the largest value: they must never win.
        std::vector<float> slice(static_cast<std::size_t>(rows * per_rank), 1e30f);
        for (int64_t n = 0; n < rows; ++n) {
          std::copy_n(logits.begin() + n * vocab + begin, valid, slice.begin() + n * per_rank);
        }
        std::vector<float> cpu_pairs(static_cast<std::size_t>(rows * 2));
        b.cpu->argmax_with_value(cpu_pairs.data(), slice.data(), rows, per_rank, valid, begin);
        GuardedArray<float> d_slice(*b.gpu, rows * per_rank, &slice), d_pairs(*b.gpu, rows * 2);
        b.gpu->argmax_with_value(d_pairs.data(), d_slice.data(), rows, per_rank, valid, begin);
        const auto gpu_pairs = d_pairs.download();
        for (int64_t n = 0; n < rows; ++n) {
          const auto i = static_cast<std::size_t>(2 * n);
          CAPTURE(r);
          CAPTURE(n);
          CHECK(std::bit_cast<int32_t>(gpu_pairs[i + 1]) == std::bit_cast<int32_t>(cpu_pairs[i + 1]));
          if (std::isnan(cpu_pairs[i])) {
            CHECK(std::isnan(gpu_pairs[i]));
          } else {
            CHECK(gpu_pairs[i] == cpu_pairs[i]);
          }
        }
        gathered_cpu.insert(gathered_cpu.end(), cpu_pairs.begin(), cpu_pairs.end());
        gathered_gpu.insert(gathered_gpu.end(), gpu_pairs.begin(), gpu_pairs.end());
      }
      std::vector<int32_t> cpu_ids(static_cast<std::size_t>(rows));
      b.cpu->merge_argmax(cpu_ids.data(), gathered_cpu.data(), world, rows);
      CHECK(cpu_ids == want);
      GuardedArray<float> d_gathered(*b.gpu, world * rows * 2, &gathered_gpu);
      GuardedArray<int32_t> d_ids(*b.gpu, rows);
      b.gpu->merge_argmax(d_ids.data(), d_gathered.data(), world, rows);
      CHECK(d_ids.download() == want);
    }
  }
}
