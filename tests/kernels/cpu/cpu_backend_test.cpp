// Every op of the CPU backend (kernels/kernels.h) against a naive reference
// written here in double precision: seeded random inputs, a tolerance per op,
// and guard values around each output that must stay untouched.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "kernels/kernels.h"

using namespace llmctl::kernels;

namespace {

constexpr float kGuard = 1234.5f;
constexpr std::size_t kGuardLen = 16;

// An output buffer with kGuardLen guard values on both sides.
struct Guarded {
  explicit Guarded(std::size_t n, float fill = -777.0f) : storage(n + 2 * kGuardLen, kGuard) {
    std::fill(storage.begin() + kGuardLen, storage.end() - kGuardLen, fill);
  }
  float* data() { return storage.data() + kGuardLen; }
  float operator[](std::size_t i) const { return storage[kGuardLen + i]; }
  std::size_t size() const { return storage.size() - 2 * kGuardLen; }
  bool guards_intact() const {
    for (std::size_t i = 0; i < kGuardLen; ++i) {
      if (storage[i] != kGuard || storage[storage.size() - 1 - i] != kGuard) return false;
    }
    return true;
  }
  std::vector<float> storage;
};

std::vector<float> random_floats(std::mt19937& rng, std::size_t n, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// max |got - want| / max(1, |want|) over the range.
double worst_error(const Guarded& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    worst = std::max(worst, std::abs(got[i] - want[i]) / std::max(1.0, std::abs(want[i])));
  }
  return worst;
}

std::vector<double> ref_rms_norm(const std::vector<float>& x, const std::vector<float>& w, int64_t rows, int64_t n,
                                 double eps) {
  std::vector<double> out(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[r * n + i]) * x[r * n + i];
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
    for (int64_t i = 0; i < n; ++i) out[r * n + i] = x[r * n + i] * inv * w[i];
  }
  return out;
}

}  // namespace

TEST_CASE("cpu backend: allocate is zero-filled and copies round-trip") {
  auto backend = make_cpu_backend(2);
  auto buf = backend->allocate(1000 * sizeof(float));
  REQUIRE(buf.is_ok());
  for (int i = 0; i < 1000; ++i) CHECK((*buf)->f32()[i] == 0.0f);
  CHECK(reinterpret_cast<uintptr_t>((*buf)->data()) % 64 == 0);
  std::mt19937 rng(1);
  const auto src = random_floats(rng, 1000);
  std::vector<float> back(1000);
  backend->copy_to_device((*buf)->data(), src.data(), 1000 * sizeof(float));
  backend->copy_to_host(back.data(), (*buf)->data(), 1000 * sizeof(float));
  backend->synchronize();
  CHECK(back == src);
}

TEST_CASE("cpu backend: embedding and gather_rows copy the indexed rows") {
  auto backend = make_cpu_backend(2);
  std::mt19937 rng(2);
  const int64_t vocab = 50, hidden = 24, T = 7;
  const auto table = random_floats(rng, vocab * hidden);
  const std::vector<int32_t> ids{3, 0, 49, 3, 17, 22, 8};
  Guarded out(T * hidden);
  backend->embedding(out.data(), ids.data(), table.data(), T, hidden);
  std::vector<double> want;
  for (int32_t id : ids) {
    for (int64_t i = 0; i < hidden; ++i) want.push_back(table[id * hidden + i]);
  }
  CHECK(worst_error(out, want) == 0.0);
  CHECK(out.guards_intact());

  const std::vector<int32_t> rows{6, 0, 2};
  Guarded g(rows.size() * hidden);
  const std::vector<float> x(out.data(), out.data() + T * hidden);
  backend->gather_rows(g.data(), x.data(), rows.data(), 3, hidden);
  std::vector<double> want_g;
  for (int32_t r : rows) {
    for (int64_t i = 0; i < hidden; ++i) want_g.push_back(x[r * hidden + i]);
  }
  CHECK(worst_error(g, want_g) == 0.0);
  CHECK(g.guards_intact());
}

TEST_CASE("cpu backend: rms_norm and add_rms_norm") {
  auto backend = make_cpu_backend(2);
  std::mt19937 rng(3);
  for (int64_t n : {8, 37, 256}) {
    for (int64_t rows : {1, 5, 130}) {  // 130 rows: more than one thread chunk
      CAPTURE(n);
      CAPTURE(rows);
      const auto x = random_floats(rng, rows * n, 2.0f);
      const auto w = random_floats(rng, n);
      Guarded out(rows * n);
      backend->rms_norm(out.data(), x.data(), w.data(), rows, n, 1e-5f);
      CHECK(worst_error(out, ref_rms_norm(x, w, rows, n, 1e-5)) < 1e-5);
      CHECK(out.guards_intact());

      // In place (out == x), as the per-head q/k norm uses it.
      Guarded inplace(rows * n);
      std::copy(x.begin(), x.end(), inplace.data());
      backend->rms_norm(inplace.data(), inplace.data(), w.data(), rows, n, 1e-5f);
      CHECK(worst_error(inplace, ref_rms_norm(x, w, rows, n, 1e-5)) < 1e-5);

      // add_rms_norm: residual += x, out = rms_norm(residual).
      const auto res0 = random_floats(rng, rows * n);
      Guarded residual(rows * n);
      std::copy(res0.begin(), res0.end(), residual.data());
      Guarded out2(rows * n);
      backend->add_rms_norm(out2.data(), residual.data(), x.data(), w.data(), rows, n, 1e-6f);
      std::vector<float> sum(rows * n);
      std::vector<double> want_sum(rows * n);
      for (std::size_t i = 0; i < sum.size(); ++i) {
        sum[i] = res0[i] + x[i];
        want_sum[i] = static_cast<double>(res0[i]) + x[i];
      }
      CHECK(worst_error(residual, want_sum) < 1e-6);
      CHECK(worst_error(out2, ref_rms_norm(sum, w, rows, n, 1e-6)) < 1e-5);
      CHECK((out2.guards_intact() && residual.guards_intact()));
    }
  }
}

TEST_CASE("cpu backend: linear with and without bias, one token (GEMV) and many (GEMM)") {
  auto backend = make_cpu_backend(2);
  std::mt19937 rng(4);
  for (int64_t T : {1, 3, 17}) {
    for (bool with_bias : {false, true}) {
      const int64_t K = 45, N = 29;
      CAPTURE(T);
      CAPTURE(with_bias);
      const auto x = random_floats(rng, T * K);
      const auto w = random_floats(rng, N * K, 0.3f);
      const auto bias = random_floats(rng, N);
      Guarded out(T * N);
      backend->linear(out.data(), x.data(), w.data(), with_bias ? bias.data() : nullptr, T, N, K);
      std::vector<double> want(T * N);
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t o = 0; o < N; ++o) {
          double acc = with_bias ? bias[o] : 0.0;
          for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(x[t * K + k]) * w[o * K + k];
          want[t * N + o] = acc;
        }
      }
      CHECK(worst_error(out, want) < 1e-5);
      CHECK(out.guards_intact());
    }
  }
}

TEST_CASE("cpu backend: rope rotates half-split pairs of q and k in place, honouring strides") {
  auto backend = make_cpu_backend(2);
  std::mt19937 rng(5);
  const int64_t T = 20, QH = 4, KVH = 2, D = 16, half = D / 2;
  // q and k live inside a fused qkv row, as the model passes them.
  const int64_t stride = (QH + 2 * KVH) * D;
  auto qkv = random_floats(rng, T * stride);
  const auto orig = qkv;
  std::vector<float> inv_freq(half);
  for (int64_t i = 0; i < half; ++i) inv_freq[i] = static_cast<float>(std::pow(10000.0, -2.0 * i / D));
  std::vector<int32_t> positions(T);
  for (int64_t t = 0; t < T; ++t) positions[t] = static_cast<int32_t>(t * 7 + 3);
  backend->rope(qkv.data(), stride, qkv.data() + QH * D, stride, positions.data(), inv_freq.data(), T, QH, KVH, D);
  double worst = 0;
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = 0; h < QH + 2 * KVH; ++h) {
      const float* before = orig.data() + t * stride + h * D;
      const float* after = qkv.data() + t * stride + h * D;
      for (int64_t i = 0; i < half; ++i) {
        double want1 = before[i], want2 = before[i + half];
        if (h < QH + KVH) {  // q and k heads rotate; v heads are untouched
          const double angle = static_cast<double>(static_cast<float>(positions[t]) * inv_freq[i]);
          want1 = before[i] * std::cos(angle) - before[i + half] * std::sin(angle);
          want2 = before[i + half] * std::cos(angle) + before[i] * std::sin(angle);
        }
        worst = std::max({worst, std::abs(after[i] - want1), std::abs(after[i + half] - want2)});
      }
    }
  }
  CHECK(worst < 1e-5);
}

TEST_CASE("cpu backend: silu_and_mul") {
  auto backend = make_cpu_backend(2);
  std::mt19937 rng(6);
  const int64_t T = 9, F = 33;
  const auto gate_up = random_floats(rng, T * 2 * F, 3.0f);
  Guarded out(T * F);
  backend->silu_and_mul(out.data(), gate_up.data(), T, F);
  std::vector<double> want(T * F);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = 0; i < F; ++i) {
      const double g = gate_up[t * 2 * F + i], u = gate_up[t * 2 * F + F + i];
      want[t * F + i] = g / (1.0 + std::exp(-g)) * u;
    }
  }
  CHECK(worst_error(out, want) < 1e-6);
  CHECK(out.guards_intact());
}

TEST_CASE("cpu backend: store_kv writes each token's row at its slot and skips negative slots") {
  auto backend = make_cpu_backend(2);
  std::mt19937 rng(7);
  const int64_t T = 5, KVH = 2, D = 8, row = KVH * D, num_slots = 12, stride = 3 * row;
  const auto kv = random_floats(rng, T * stride);
  const std::vector<int32_t> slots{7, -1, 0, 11, 4};
  Guarded k_cache(num_slots * row, 0.0f), v_cache(num_slots * row, 0.0f);
  backend->store_kv(k_cache.data(), v_cache.data(), kv.data(), stride, kv.data() + row, stride, slots.data(), T, KVH,
                    D);
  std::vector<double> want_k(num_slots * row, 0.0), want_v(num_slots * row, 0.0);
  for (int64_t t = 0; t < T; ++t) {
    if (slots[t] < 0) continue;
    for (int64_t i = 0; i < row; ++i) {
      want_k[slots[t] * row + i] = kv[t * stride + i];
      want_v[slots[t] * row + i] = kv[t * stride + row + i];
    }
  }
  CHECK(worst_error(k_cache, want_k) == 0.0);
  CHECK(worst_error(v_cache, want_v) == 0.0);
  CHECK((k_cache.guards_intact() && v_cache.guards_intact()));
}

TEST_CASE("cpu backend: paged_attention (GQA, chunked queries, scattered blocks, sliding window)") {
  auto backend = make_cpu_backend(2);
  std::mt19937 rng(8);
  const int64_t QH = 6, KVH = 2, D = 16, group = QH / KVH, kv_row = KVH * D;
  const int32_t block_size = 4, num_blocks = 40;
  // Three sequences: a decode (1 query of 13), a prefill chunk (5 queries
  // ending at 9), a whole prefill (7 of 7).
  const std::vector<int32_t> context{13, 9, 7}, queries{1, 5, 7};
  const auto k_cache = random_floats(rng, num_blocks * block_size * kv_row);
  const auto v_cache = random_floats(rng, num_blocks * block_size * kv_row);
  // Each sequence gets distinct blocks in a scrambled order.
  std::vector<int32_t> perm(num_blocks);
  for (int32_t i = 0; i < num_blocks; ++i) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), rng);
  const int32_t max_blocks = 4;
  std::vector<int32_t> tables(3 * max_blocks, 0);
  for (int s = 0, next = 0; s < 3; ++s) {
    for (int b = 0; b < (context[s] + block_size - 1) / block_size; ++b) tables[s * max_blocks + b] = perm[next++];
  }
  std::vector<int32_t> query_start{0};
  for (int32_t q : queries) query_start.push_back(query_start.back() + q);
  const int64_t T = query_start.back(), q_stride = QH * D + 8;  // padded rows
  const auto q = random_floats(rng, T * q_stride);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));

  AttentionBatch batch;
  batch.num_seqs = 3;
  batch.query_start = query_start.data();
  batch.context_len = context.data();
  batch.block_tables = tables.data();
  batch.max_blocks_per_seq = max_blocks;
  batch.block_size = block_size;

  for (int64_t window : {0, 3, 100}) {
    CAPTURE(window);
    Guarded out(T * QH * D);
    backend->paged_attention(out.data(), q.data(), q_stride, k_cache.data(), v_cache.data(), batch, QH, KVH, D, scale,
                             window);
    std::vector<double> want(T * QH * D);
    for (int s = 0; s < 3; ++s) {
      for (int32_t t = query_start[s]; t < query_start[s + 1]; ++t) {
        const int64_t pos = context[s] - (query_start[s + 1] - t);
        for (int64_t h = 0; h < QH; ++h) {
          const int64_t kvh = h / group;
          std::vector<double> scores;
          std::vector<const float*> values;
          for (int64_t j = 0; j <= pos; ++j) {
            if (window > 0 && j <= pos - window) continue;
            const int64_t slot = static_cast<int64_t>(tables[s * max_blocks + j / block_size]) * block_size + j % block_size;
            const float* kv = k_cache.data() + slot * kv_row + kvh * D;
            double dot = 0;
            for (int64_t d = 0; d < D; ++d) dot += static_cast<double>(q[t * q_stride + h * D + d]) * kv[d];
            scores.push_back(dot * scale);
            values.push_back(v_cache.data() + slot * kv_row + kvh * D);
          }
          double mx = -INFINITY;  // every query sees at least its own key
          for (double sc : scores) mx = std::max(mx, sc);
          double denom = 0;
          for (double& sc : scores) denom += (sc = std::exp(sc - mx));
          for (int64_t d = 0; d < D; ++d) {
            double acc = 0;
            for (std::size_t j = 0; j < scores.size(); ++j) acc += scores[j] * values[j][d];
            want[(t * QH + h) * D + d] = acc / denom;
          }
        }
      }
    }
    CHECK(worst_error(out, want) < 1e-5);
    CHECK(out.guards_intact());
  }
}
