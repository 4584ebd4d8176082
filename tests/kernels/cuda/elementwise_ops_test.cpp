// The row-wise and element-wise CUDA ops against the CPU backend.
#include <doctest/doctest.h>

#include <cmath>
#include <utility>

#include "cuda_test_util.h"

namespace llmctl::kernels::test {
namespace {

TEST_CASE("cuda embedding and gather_rows copy the chosen rows exactly") {
  Backends b;
  std::mt19937 rng(11);
  const int64_t vocab = 1000, hidden = 301, tokens = 37;
  const auto table = random_floats(rng, vocab * hidden);
  const auto ids = random_ints(rng, tokens, 0, static_cast<int32_t>(vocab - 1));
  std::vector<float> want(static_cast<std::size_t>(tokens * hidden));
  b.cpu->embedding(want.data(), ids.data(), table.data(), tokens, hidden);

  GuardedArray<float> d_table(*b.gpu, vocab * hidden, &table), d_out(*b.gpu, tokens * hidden);
  GuardedArray<int32_t> d_ids(*b.gpu, tokens, &ids);
  b.gpu->embedding(d_out.data(), d_ids.data(), d_table.data(), tokens, hidden);
  CHECK(d_out.download() == want);

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

TEST_CASE("cuda store_kv writes the mapped slots and skips negative ones") {
  Backends b;
  std::mt19937 rng(16);
  const int64_t tokens = 23, num_slots = 64;
  // Rows of one block of threads, and of several with a partial last one.
  for (const auto& shape : {std::pair<int64_t, int64_t>{4, 64}, {8, 100}}) {
    const int64_t kvh = shape.first, head_dim = shape.second;
    CAPTURE(head_dim);
    const int64_t row = kvh * head_dim, stride = 3 * row;  // k and v inside fused qkv rows
    const auto qkv = random_floats(rng, tokens * stride);
    std::vector<int32_t> slots(static_cast<std::size_t>(num_slots));
    for (int32_t i = 0; i < num_slots; ++i) slots[static_cast<std::size_t>(i)] = i;
    std::shuffle(slots.begin(), slots.end(), rng);
    slots.resize(static_cast<std::size_t>(tokens));
    slots[3] = -1;
    slots[17] = -1;
    auto k_cache = random_floats(rng, num_slots * row), v_cache = random_floats(rng, num_slots * row);
    GuardedArray<float> d_qkv(*b.gpu, tokens * stride, &qkv), d_k(*b.gpu, num_slots * row, &k_cache),
        d_v(*b.gpu, num_slots * row, &v_cache);
    GuardedArray<int32_t> d_slots(*b.gpu, tokens, &slots);
    b.cpu->store_kv(k_cache.data(), v_cache.data(), qkv.data() + row, stride, qkv.data() + 2 * row, stride,
                    slots.data(), tokens, kvh, head_dim);
    b.gpu->store_kv(d_k.data(), d_v.data(), d_qkv.data() + row, stride, d_qkv.data() + 2 * row, stride, d_slots.data(),
                    tokens, kvh, head_dim);
    CHECK(d_k.download() == k_cache);
    CHECK(d_v.download() == v_cache);
  }
}

}  // namespace
}  // namespace llmctl::kernels::test
