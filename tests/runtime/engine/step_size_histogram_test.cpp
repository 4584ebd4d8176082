// StepSizeHistogram: LLMCTL_STEP_TIMING's steps by size (eager steps by
// tokens, decode graph steps by sequences) — each step in the first bucket
// whose limit holds it, counts, sizes and times summed, and the report line
// naming only the buckets that saw a step.
#include <doctest/doctest.h>

#include <climits>
#include <cstdint>

#include "runtime/engine/step_size_histogram.h"

using llmctl::engine::StepSizeHistogram;

TEST_CASE("step size histogram: bucket edges, sums, and the report of the buckets used") {
  StepSizeHistogram graphs{{8, 32, 128, 512, INT64_MAX}};
  CHECK(graphs.describe("sequences").empty());
  CHECK(graphs.total_steps() == 0);
  graphs.add(1, 6.0);
  graphs.add(8, 6.5);     // the first bucket's limit is inclusive
  graphs.add(9, 7.0);     // the next one's low edge
  graphs.add(1000, 30.0);  // past the last finite limit
  graphs.add(513, 25.0);
  CHECK(graphs.steps[0] == 2);
  CHECK(graphs.sizes[0] == 9);
  CHECK(graphs.ms[0] == doctest::Approx(12.5));
  CHECK(graphs.steps[1] == 1);
  CHECK(graphs.steps[2] == 0);
  CHECK(graphs.steps[3] == 0);
  CHECK(graphs.steps[4] == 2);
  CHECK(graphs.sizes[4] == 1513);
  CHECK(graphs.total_steps() == 5);
  CHECK(graphs.total_ms() == doctest::Approx(74.5));
  CHECK(graphs.describe("sequences") ==
        "1-8 sequences: 2 steps, 9 sequences, 12.5 ms; 9-32 sequences: 1 steps, 9 sequences, 7.0 ms; "
        "513- sequences: 2 steps, 1513 sequences, 55.0 ms");

  StepSizeHistogram eager{{64, 256, 1024, 4096, INT64_MAX}};
  eager.add(4096, 40.0);
  eager.add(4097, 41.0);
  CHECK(eager.describe("tokens") == "1025-4096 tokens: 1 steps, 4096 tokens, 40.0 ms; 4097- tokens: 1 steps, 4097 tokens, 41.0 ms");
}
