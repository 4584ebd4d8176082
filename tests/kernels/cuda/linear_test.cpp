// The bf16-weight linear (on weights this small, the own GEMV up to 8
// tokens and cuBLASLt above; linear.cu's takes_gemv) against the CPU backend's OpenBLAS one run on the same weights
// rounded to bf16 on the host (and, on the cuBLASLt path, x rounded too):
// what is left is fp32 summation order.
#include <doctest/doctest.h>

#include "cuda_test_util.h"

namespace llmctl::kernels::test {
namespace {

std::vector<float> round_to_bf16(const std::vector<float>& v) {
  std::vector<float> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = float_of_bf16_bits(bf16_bits_of(v[i]));
  return out;
}

// A weight buffer with bf16 guard halves on both sides, filled through
// copy_weight_to_device.
struct WeightArray {
  std::unique_ptr<DeviceBuffer> buf;
  int64_t n;
  WeightArray(Backend& gpu, const std::vector<float>& w) : n(static_cast<int64_t>(w.size())) {
    auto made = gpu.allocate(static_cast<std::size_t>(n + 2 * kGuard) * sizeof(uint16_t));
    REQUIRE(made.is_ok());
    buf = std::move(made).value();
    std::vector<uint16_t> guards(static_cast<std::size_t>(n + 2 * kGuard), 0xbadbu);
    gpu.copy_to_device(buf->data(), guards.data(), guards.size() * sizeof(uint16_t));
    gpu.copy_weight_to_device(data(), w.data(), w.size());
  }
  uint16_t* data() const { return static_cast<uint16_t*>(buf->data()) + kGuard; }
  std::vector<uint16_t> download(Backend& gpu) const {
    std::vector<uint16_t> host(static_cast<std::size_t>(n + 2 * kGuard));
    gpu.copy_to_host(host.data(), buf->data(), host.size() * sizeof(uint16_t));
    return host;
  }
};

TEST_CASE("cuda stores linear weights as bf16, rounded to nearest even, and writes nothing outside") {
  Backends b;
  REQUIRE(b.gpu->weight_dtype() == WeightDtype::kBF16);
  std::mt19937 rng(17);
  auto w = random_floats(rng, 1001, -3.0f, 3.0f);
  // Exact ties between two bf16 values, both parities, and signed zero.
  const float ties[] = {1.0f + 1.0f / 256.0f, 1.0f + 3.0f / 256.0f, -1.0f - 1.0f / 256.0f, -0.0f, 65504.0f};
  std::copy(std::begin(ties), std::end(ties), w.begin());
  const WeightArray d(*b.gpu, w);
  const auto host = d.download(*b.gpu);
  int64_t bad = 0, guards = 0;
  for (int64_t i = 0; i < kGuard; ++i) {
    guards += host[static_cast<std::size_t>(i)] != 0xbadbu;
    guards += host[static_cast<std::size_t>(d.n + kGuard + i)] != 0xbadbu;
  }
  for (std::size_t i = 0; i < w.size(); ++i) bad += host[kGuard + i] != bf16_bits_of(w[i]);
  CHECK(guards == 0);
  CHECK(bad == 0);
  CHECK(host[kGuard + 0] == 0x3f80u);  // 1 + 2^-8 ties to the even 1.0
  CHECK(host[kGuard + 1] == 0x3f82u);  // 1 + 3 * 2^-8 ties up to the even mantissa
}

TEST_CASE("cuda bf16 linear matches the cpu on rounded weights for decode and prefill shapes") {
  Backends b;
  std::mt19937 rng(21);
  const int64_t n = 300;
  // 264: the 16-byte vector GEMV and cuBLASLt; 257: the scalar GEMV and
  // whatever cuBLASLt makes of an odd leading dimension.
  for (const int64_t k : {264, 257}) {
    const auto w = random_floats(rng, n * k);
    const auto w_rounded = round_to_bf16(w);
    const auto bias = random_floats(rng, n);
    const WeightArray d_w(*b.gpu, w);
    GuardedArray<float> d_bias(*b.gpu, n, &bias);
    for (const int64_t tokens : {1, 2, 3, 7, 8, 9, 64}) {
      for (const bool with_bias : {false, true}) {
        CAPTURE(k);
        CAPTURE(tokens);
        CAPTURE(with_bias);
        const auto x = random_floats(rng, tokens * k);
        const bool lt_path = tokens > 8;
        const auto x_ref = lt_path ? round_to_bf16(x) : x;
        std::vector<float> want(static_cast<std::size_t>(tokens * n));
        b.cpu->linear(want.data(), x_ref.data(), w_rounded.data(), with_bias ? bias.data() : nullptr, tokens, n, k);
        GuardedArray<float> d_x(*b.gpu, tokens * k, &x), d_out(*b.gpu, tokens * n);
        b.gpu->linear(d_out.data(), d_x.data(), d_w.data(), with_bias ? d_bias.data() : nullptr, tokens, n, k);
        // ~260-term fp32 sums of products exact in fp32, in another order:
        // a few ulps of the magnitude (~10). An odd K above 8 tokens may
        // fall back to the GEMV on fp32 x: then x's rounding (2^-9
        // relative per term, ~0.01 in the sum) is the difference.
        const double atol = lt_path && k % 8 != 0 ? 3e-2 : 1e-4;
        check_close(d_out.download(), want, atol, 1e-5, "linear");
      }
    }
  }
}

TEST_CASE("cuda bf16 linear: past one token a large weight goes through cuBLASLt with x rounded to bf16") {
  // 2048 x 1024 bf16 is 4 MiB, where linear.cu's takes_gemv stops keeping
  // small decode batches on the GEMV (fp32 x): the outputs must equal the
  // CPU on bf16-rounded x, which the fp32-x GEMV would miss by ~1e-2.
  Backends b;
  std::mt19937 rng(23);
  const int64_t n = 2048, k = 1024;
  const auto w_rounded = round_to_bf16(random_floats(rng, n * k));
  const WeightArray d_w(*b.gpu, w_rounded);
  for (const int64_t tokens : {1, 2, 4, 8}) {
    CAPTURE(tokens);
    const auto x = random_floats(rng, tokens * k);
    const auto x_ref = tokens > 1 ? round_to_bf16(x) : x;
    std::vector<float> want(static_cast<std::size_t>(tokens * n));
    b.cpu->linear(want.data(), x_ref.data(), w_rounded.data(), nullptr, tokens, n, k);
    GuardedArray<float> d_x(*b.gpu, tokens * k, &x), d_out(*b.gpu, tokens * n);
    b.gpu->linear(d_out.data(), d_x.data(), d_w.data(), nullptr, tokens, n, k);
    // ~1000-term sums of exact products in another order.
    check_close(d_out.download(), want, 4e-4, 1e-5, "linear");
  }
}

TEST_CASE("cuda gated_mlp matches the cpu's linear, silu_and_mul, linear with bf16 intermediates on cuBLASLt") {
  // Up to 8 tokens these small weights take the GEMV and fp32 throughout;
  // past that both GEMMs run on cuBLASLt and x, gate_up and the activation
  // are rounded to bf16, which the reference does at the same points.
  Backends b;
  std::mt19937 rng(29);
  const int64_t hidden = 256;
  // 1020: rows that take silu_and_mul_bf16's one-value-a-thread kernel.
  for (const int64_t ff : {1024, 1020}) {
  const auto w_gate_up = round_to_bf16(random_floats(rng, 2 * ff * hidden, -0.1f, 0.1f));
  const auto w_down = round_to_bf16(random_floats(rng, hidden * ff, -0.1f, 0.1f));
  const WeightArray d_gate_up_w(*b.gpu, w_gate_up), d_down_w(*b.gpu, w_down);
  for (const int64_t tokens : {1, 8, 9, 64, 300}) {
    CAPTURE(ff);
    CAPTURE(tokens);
    const bool lt_path = tokens > 8;
    const auto x = random_floats(rng, tokens * hidden);
    auto round_if = [&](std::vector<float> v) { return lt_path ? round_to_bf16(v) : v; };
    std::vector<float> gate_up(static_cast<std::size_t>(tokens * 2 * ff)), act(static_cast<std::size_t>(tokens * ff));
    std::vector<float> want(static_cast<std::size_t>(tokens * hidden));
    const auto x_ref = round_if(x);
    b.cpu->linear(gate_up.data(), x_ref.data(), w_gate_up.data(), nullptr, tokens, 2 * ff, hidden);
    gate_up = round_if(gate_up);
    b.cpu->silu_and_mul(act.data(), gate_up.data(), tokens, ff);
    act = round_if(act);
    b.cpu->linear(want.data(), act.data(), w_down.data(), nullptr, tokens, hidden, ff);

    GuardedArray<float> d_x(*b.gpu, tokens * hidden, &x), d_out(*b.gpu, tokens * hidden);
    GuardedArray<float> d_gate_up(*b.gpu, tokens * 2 * ff), d_act(*b.gpu, tokens * ff);
    b.gpu->gated_mlp(d_out.data(), d_x.data(), d_gate_up_w.data(), d_down_w.data(), d_gate_up.data(), d_act.data(),
                     tokens, hidden, ff);
    // Outputs ~0.5: summation order may round a gate_up or activation value
    // the other way (one bf16 ulp of ~0.3, times a weight of ~0.05).
    check_close(d_out.download(), want, 2e-3, 1e-2, "gated_mlp");
    // The workspace is the caller's (the bf16 path fills half of it): nothing
    // written past it.
    (void)d_gate_up.download(false);
    (void)d_act.download(false);
  }
  }
}

}  // namespace
}  // namespace llmctl::kernels::test
