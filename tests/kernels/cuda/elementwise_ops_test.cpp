// The row-wise and element-wise CUDA ops against the CPU backend.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "cuda_test_util.h"

namespace llmctl::kernels::test {
namespace {

// The bf16 embedding: weight_upload_test.cpp.
TEST_CASE("cuda gather_rows copies the chosen rows exactly") {
  Backends b;
  std::mt19937 rng(11);
  const int64_t hidden = 301, tokens = 37;
  const auto want = random_floats(rng, tokens * hidden);
  GuardedArray<float> d_out(*b.gpu, tokens * hidden, &want);

  const int64_t rows = 5;
  const auto picks = random_ints(rng, rows, 0, static_cast<int32_t>(tokens - 1));
  std::vector<float> want_rows(static_cast<std::size_t>(rows * hidden));
  b.cpu->gather_rows(want_rows.data(), want.data(), picks.data(), rows, hidden);
  GuardedArray<int32_t> d_picks(*b.gpu, rows, &picks);
  GuardedArray<float> d_rows(*b.gpu, rows * hidden);
  b.gpu->gather_rows(d_rows.data(), d_out.data(), d_picks.data(), rows, hidden);
  CHECK(d_rows.download() == want_rows);
}

TEST_CASE("cuda rms_norm matches the cpu, also in place and for per-head rows") {
  Backends b;
  std::mt19937 rng(12);
  for (const int64_t n : {8, 64, 300, 2048, 5000}) {
    CAPTURE(n);
    const int64_t rows = 13;
    const auto x = random_floats(rng, rows * n, -3.0f, 3.0f);
    const auto w = random_floats(rng, n, 0.5f, 1.5f);
    std::vector<float> want(x.size());
    b.cpu->rms_norm(want.data(), x.data(), w.data(), rows, n, 1e-5f);

    GuardedArray<float> d_x(*b.gpu, rows * n, &x), d_w(*b.gpu, n, &w), d_out(*b.gpu, rows * n);
    b.gpu->rms_norm(d_out.data(), d_x.data(), d_w.data(), rows, n, 1e-5f);
    check_close(d_out.download(), want, 1e-6, 1e-5, "rms_norm");
    b.gpu->rms_norm(d_x.data(), d_x.data(), d_w.data(), rows, n, 1e-5f);
    check_close(d_x.download(), want, 1e-6, 1e-5, "rms_norm in place");
  }
}

TEST_CASE("cuda rms_norm_heads normalises each head inside wider rows and nothing else") {
  Backends b;
  std::mt19937 rng(13);
  // Qwen3-like: q heads at the start of fused qkv rows, k heads after them.
  for (const int64_t head_dim : {64, 128}) {
    CAPTURE(head_dim);
    const int64_t tokens = 37, heads = 6, stride = (heads + 2 * 2) * head_dim + 8;
    const auto x = random_floats(rng, tokens * stride, -3.0f, 3.0f);
    const auto w = random_floats(rng, head_dim, 0.5f, 1.5f);
    std::vector<float> want = x;  // the CPU's per-token loop is the reference
    b.cpu->rms_norm_heads(want.data(), stride, w.data(), tokens, heads, head_dim, 1e-6f);
    GuardedArray<float> d_x(*b.gpu, tokens * stride, &x), d_w(*b.gpu, head_dim, &w);
    b.gpu->rms_norm_heads(d_x.data(), stride, d_w.data(), tokens, heads, head_dim, 1e-6f);
    const std::vector<float> got = d_x.download();
    check_close(got, want, 1e-6, 1e-5, "rms_norm_heads");
    // The values past the heads (k, v, padding) are untouched, bit for bit.
    for (int64_t t = 0; t < tokens; ++t) {
      for (int64_t i = heads * head_dim; i < stride; ++i) {
        const auto at = static_cast<std::size_t>(t * stride + i);
        REQUIRE(got[at] == x[at]);
      }
    }
  }
}

TEST_CASE("cuda argmax_rows picks the first maximum of every row, as a sequential scan does") {
  Backends b;
  std::mt19937 rng(14);
  for (const int64_t vocab : {1, 33, 1000, 128256, 151936}) {
    CAPTURE(vocab);
    const int64_t rows = 70;
    auto logits = random_floats(rng, rows * vocab, -20.0f, 20.0f);
    std::uniform_int_distribution<int64_t> pick(0, vocab - 1);
    for (int64_t r = 0; r < rows; ++r) {
      float* row = logits.data() + r * vocab;
      if (r % 3 == 0) {  // the maximum twice: the lower index must win
        const int64_t i = pick(rng), j = pick(rng);
        row[i] = row[j] = 25.0f;
      }
      if (r % 7 == 0) row[pick(rng)] = std::nanf("");  // NaN never wins
      if (r == 5) std::fill(row, row + vocab, -3.0f);  // all equal: index 0
    }
    std::vector<int32_t> want(static_cast<std::size_t>(rows));
    b.cpu->argmax_rows(want.data(), logits.data(), rows, vocab);
    for (int64_t r = 0; r < rows; ++r) {  // the CPU reference against a plain scan
      const float* row = logits.data() + r * vocab;
      int64_t best = -1;
      for (int64_t i = 0; i < vocab; ++i) {
        if (std::isnan(row[i])) continue;
        if (best < 0 || row[i] > row[best]) best = i;
      }
      if (best < 0) best = 0;  // an all-NaN row
      REQUIRE(want[static_cast<std::size_t>(r)] == best);
    }
    GuardedArray<float> d_logits(*b.gpu, rows * vocab, &logits);
    GuardedArray<int32_t> d_ids(*b.gpu, rows);
    b.gpu->argmax_rows(d_ids.data(), d_logits.data(), rows, vocab);
    CHECK(d_ids.download() == want);
  }
}

TEST_CASE("cuda add_rms_norm updates the residual and normalises it") {
  Backends b;
  std::mt19937 rng(13);
  // Up to 8192 the register-resident kernel, above it the looping one.
  for (const int64_t n : {64, 2048, 3001, 8192, 9000}) {
    CAPTURE(n);
    const int64_t rows = 9;
    auto residual = random_floats(rng, rows * n, -2.0f, 2.0f);
    const auto x = random_floats(rng, rows * n, -2.0f, 2.0f);
    const auto w = random_floats(rng, n, 0.5f, 1.5f);
    GuardedArray<float> d_res(*b.gpu, rows * n, &residual), d_x(*b.gpu, rows * n, &x), d_w(*b.gpu, n, &w),
        d_out(*b.gpu, rows * n);
    std::vector<float> want(x.size());
    b.cpu->add_rms_norm(want.data(), residual.data(), x.data(), w.data(), rows, n, 1e-6f);
    b.gpu->add_rms_norm(d_out.data(), d_res.data(), d_x.data(), d_w.data(), rows, n, 1e-6f);
    check_close(d_res.download(), residual, 0, 0, "residual");
    check_close(d_out.download(), want, 1e-6, 1e-5, "add_rms_norm");
  }
}

TEST_CASE("cuda rope rotates q and k in place and leaves v alone") {
  Backends b;
  std::mt19937 rng(14);
  for (const int64_t head_dim : {8, 64, 128}) {
    CAPTURE(head_dim);
    const int64_t tokens = 19, qh = 8, kvh = 2;
    const int64_t width = (qh + 2 * kvh) * head_dim;  // fused qkv rows, as the model passes them
    auto qkv = random_floats(rng, tokens * width);
    const auto positions = random_ints(rng, tokens, 0, 8000);
    std::vector<float> inv_freq(static_cast<std::size_t>(head_dim / 2));
    for (int64_t i = 0; i < head_dim / 2; ++i) {
      inv_freq[static_cast<std::size_t>(i)] =
          static_cast<float>(1.0 / std::pow(500000.0, 2.0 * static_cast<double>(i) / static_cast<double>(head_dim)));
    }
    GuardedArray<float> d_qkv(*b.gpu, tokens * width, &qkv), d_inv(*b.gpu, head_dim / 2, &inv_freq);
    GuardedArray<int32_t> d_pos(*b.gpu, tokens, &positions);
    const std::vector<float> before = qkv;
    b.cpu->rope(qkv.data(), width, qkv.data() + qh * head_dim, width, positions.data(), inv_freq.data(), tokens, qh,
                kvh, head_dim);
    b.gpu->rope(d_qkv.data(), width, d_qkv.data() + qh * head_dim, width, d_pos.data(), d_inv.data(), tokens, qh, kvh,
                head_dim);
    const auto got = d_qkv.download();
    check_close(got, qkv, 2e-6, 2e-5, "rope");
    for (int64_t t = 0; t < tokens; ++t) {  // the v part of each row is untouched
      for (int64_t i = (qh + kvh) * head_dim; i < width; ++i) {
        REQUIRE(got[static_cast<std::size_t>(t * width + i)] == before[static_cast<std::size_t>(t * width + i)]);
      }
    }
  }
}

TEST_CASE("cuda silu_and_mul matches the cpu") {
  Backends b;
  std::mt19937 rng(15);
  const int64_t tokens = 5, width = 1003;
  const auto gate_up = random_floats(rng, tokens * 2 * width, -8.0f, 8.0f);
  std::vector<float> want(static_cast<std::size_t>(tokens * width));
  b.cpu->silu_and_mul(want.data(), gate_up.data(), tokens, width);
  GuardedArray<float> d_in(*b.gpu, tokens * 2 * width, &gate_up), d_out(*b.gpu, tokens * width);
  b.gpu->silu_and_mul(d_out.data(), d_in.data(), tokens, width);
  check_close(d_out.download(), want, 1e-6, 1e-5, "silu_and_mul");
}

TEST_CASE("cuda store_kv writes the mapped slots as bf16 (nearest even) and skips negative ones") {
  Backends b;
  std::mt19937 rng(16);
  const int64_t tokens = 23, num_slots = 64;
  // Rows of one block of threads, and of several with a partial last one.
  for (const auto& shape : {std::pair<int64_t, int64_t>{4, 64}, {8, 100}}) {
    const int64_t kvh = shape.first, head_dim = shape.second;
    CAPTURE(head_dim);
    const int64_t row = kvh * head_dim, stride = 3 * row;  // k and v inside fused qkv rows
    auto qkv = random_floats(rng, tokens * stride);
    // Exact ties between two bf16 values, both parities, and -0: they round to the even one.
    const float ties[] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -(2.0f + 0x1p-7f), -0.0f};
    for (int i = 0; i < 4; ++i) {
      qkv[static_cast<std::size_t>(row + i)] = ties[i];
      qkv[static_cast<std::size_t>(2 * row + i)] = ties[i];
    }
    std::vector<int32_t> slots(static_cast<std::size_t>(num_slots));
    for (int32_t i = 0; i < num_slots; ++i) slots[static_cast<std::size_t>(i)] = i;
    std::shuffle(slots.begin(), slots.end(), rng);
    slots.resize(static_cast<std::size_t>(tokens));
    slots[3] = -1;
    slots[17] = -1;
    // The fp32 CPU cache is the reference: each written element's bf16 bits
    // must equal the host's round-to-nearest-even of it; slots nobody writes
    // keep their old bits in both.
    auto k_cache = random_floats(rng, num_slots * row), v_cache = random_floats(rng, num_slots * row);
    const auto k_old = bf16_bits_of(k_cache), v_old = bf16_bits_of(v_cache);
    GuardedArray<float> d_qkv(*b.gpu, tokens * stride, &qkv);
    GuardedArray<uint16_t> d_k(*b.gpu, num_slots * row, &k_old), d_v(*b.gpu, num_slots * row, &v_old);
    GuardedArray<int32_t> d_slots(*b.gpu, tokens, &slots);
    b.cpu->store_kv(k_cache.data(), v_cache.data(), qkv.data() + row, stride, qkv.data() + 2 * row, stride,
                    slots.data(), tokens, kvh, head_dim);
    b.gpu->store_kv(d_k.data(), d_v.data(), d_qkv.data() + row, stride, d_qkv.data() + 2 * row, stride, d_slots.data(),
                    tokens, kvh, head_dim);
    CHECK(d_k.download() == bf16_bits_of(k_cache));
    CHECK(d_v.download() == bf16_bits_of(v_cache));
  }
}

}  // namespace
}  // namespace llmctl::kernels::test
