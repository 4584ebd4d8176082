// cuBLAS linear (fp32, no TF32) against the CPU backend's OpenBLAS one.
#include <doctest/doctest.h>

#include "cuda_test_util.h"

namespace llmctl::kernels::test {
namespace {

TEST_CASE("cuda linear matches the cpu for decode and prefill shapes, with and without bias") {
  Backends b;
  std::mt19937 rng(21);
  const int64_t n = 300, k = 257;
  const auto w = random_floats(rng, n * k);
  const auto bias = random_floats(rng, n);
  GuardedArray<float> d_w(*b.gpu, n * k, &w), d_bias(*b.gpu, n, &bias);
  for (const int64_t tokens : {1, 2, 7, 64}) {
    for (const bool with_bias : {false, true}) {
      CAPTURE(tokens);
      CAPTURE(with_bias);
      const auto x = random_floats(rng, tokens * k);
      std::vector<float> want(static_cast<std::size_t>(tokens * n));
      b.cpu->linear(want.data(), x.data(), w.data(), with_bias ? bias.data() : nullptr, tokens, n, k);
      GuardedArray<float> d_x(*b.gpu, tokens * k, &x), d_out(*b.gpu, tokens * n);
      b.gpu->linear(d_out.data(), d_x.data(), d_w.data(), with_bias ? d_bias.data() : nullptr, tokens, n, k);
      // 257-term fp32 sums in a different order: a few ulps of the magnitude (~10).
      check_close(d_out.download(), want, 2e-5, 1e-5, "linear");
    }
  }
}

}  // namespace
}  // namespace llmctl::kernels::test
