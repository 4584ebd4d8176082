// DecodeGraphs::buckets_for: which batch sizes get a CUDA graph (the graphs
// themselves run on the GPU machine, in kernels_cuda_engine_test).
#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include "runtime/engine/decode_graphs.h"

using llmctl::engine::DecodeGraphs;

TEST_CASE("decode graph buckets: powers of two, then every 32, up to max_num_seqs") {
  CHECK(DecodeGraphs::buckets_for(1) == std::vector<int32_t>{1});
  CHECK(DecodeGraphs::buckets_for(20) == std::vector<int32_t>{1, 2, 4, 8, 16, 20});
  CHECK(DecodeGraphs::buckets_for(100) == std::vector<int32_t>{1, 2, 4, 8, 16, 32, 64, 96, 100});
  CHECK(DecodeGraphs::buckets_for(128) == std::vector<int32_t>{1, 2, 4, 8, 16, 32, 64, 96, 128});
}

TEST_CASE("decode graph buckets: every batch finds a bucket that pads it by fewer than 32 rows") {
  for (int32_t max : {1, 7, 33, 256, 257, 1000, 1024}) {
    CAPTURE(max);
    const std::vector<int32_t> buckets = DecodeGraphs::buckets_for(max);
    REQUIRE(!buckets.empty());
    CHECK(buckets.back() == max);
    CHECK(std::is_sorted(buckets.begin(), buckets.end()));
    CHECK(std::adjacent_find(buckets.begin(), buckets.end()) == buckets.end());
    for (int32_t n = 1; n <= max; ++n) {
      const int32_t bucket = *std::lower_bound(buckets.begin(), buckets.end(), n);
      if (bucket - n >= DecodeGraphs::kBucketStep) FAIL("batch " << n << " pads to " << bucket);
    }
  }
}
