// The CPU backend: fp32 throughout, OpenBLAS for the GEMMs, a thread pool for
// attention and the row-wise ops, loops written so the compiler vectorises them.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#include "kernels/cpu/thread_pool.h"
#include "kernels/kernels.h"
#include "kernels/weight_convert.h"

namespace llmctl::kernels {

DeviceBuffer::~DeviceBuffer() { backend_->deallocate(data_); }

// The CPU backend allocates with aligned new; device backends override.
void Backend::deallocate(void* data) { ::operator delete(data, std::align_val_t{64}); }

namespace cpu {
namespace {

// Dot product with independent partial sums so it vectorises without
// -ffast-math (a single accumulator forms a serial dependency chain).
inline float dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  }
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

inline void rms_norm_row(float* out, const float* x, const float* w, int64_t n, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float inv = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(n)) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = w[i] * (x[i] * inv);
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int num_threads) : pool_(num_threads) {}

  std::string_view name() const override { return "cpu"; }

  Result<std::unique_ptr<DeviceBuffer>> allocate(std::size_t size_bytes) override {
    const std::size_t rounded = std::max<std::size_t>(64, (size_bytes + 63) / 64 * 64);
    void* p = ::operator new(rounded, std::align_val_t{64}, std::nothrow);
    if (p == nullptr) {
      return Status::unavailable("cpu backend: cannot allocate " + std::to_string(size_bytes) + " bytes");
    }
    std::memset(p, 0, rounded);
    return std::make_unique<DeviceBuffer>(this, p, size_bytes);
  }
  void copy_to_device(void* dst, const void* src, std::size_t n) override { std::memcpy(dst, src, n); }
  void copy_to_host(void* dst, const void* src, std::size_t n) override { std::memcpy(dst, src, n); }
  void synchronize() override {}

  // Weights are fp32 here; the conversion of a bf16/f16 checkpoint runs on
  // the pool's threads (a large model is mostly this at start-up).
  void upload_weight(void* dst, const void* src, WeightDtype src_dtype, std::size_t count) override {
    const auto* in = static_cast<const unsigned char*>(src);
    const std::size_t element = weight_dtype_size_bytes(src_dtype);
    auto* out = static_cast<float*>(dst);
    pool_.parallel_for(static_cast<int64_t>(count), int64_t{1} << 16, [&](int64_t b, int64_t e) {
      const auto begin = static_cast<std::size_t>(b);
      convert_weight_to_f32(src_dtype, in + begin * element, static_cast<std::size_t>(e - b), out + begin);
    });
  }

  void embedding(float* out, const int32_t* ids, const void* table, int64_t num_tokens, int64_t hidden) override {
    const auto* rows = static_cast<const float*>(table);  // weight_dtype() is kF32 here
    for (int64_t t = 0; t < num_tokens; ++t) {
      std::memcpy(out + t * hidden, rows + static_cast<int64_t>(ids[t]) * hidden, hidden * sizeof(float));
    }
  }

  void rms_norm(float* out, const float* x, const float* weight, int64_t rows, int64_t n, float eps) override {
    pool_.parallel_for(rows, 64, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) rms_norm_row(out + r * n, x + r * n, weight, n, eps);
    });
  }

  void add_rms_norm(float* out, float* residual, const float* x, const float* weight, int64_t rows, int64_t n,
                    float eps) override {
    pool_.parallel_for(rows, 64, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        float* res = residual + r * n;
        const float* xr = x + r * n;
        for (int64_t i = 0; i < n; ++i) res[i] += xr[i];
        rms_norm_row(out + r * n, res, weight, n, eps);
      }
    });
  }

  void linear(float* out, const float* x, const void* weights, const float* bias, int64_t num_tokens,
              int64_t out_features, int64_t in_features) override {
    const auto* w = static_cast<const float*>(weights);  // weight_dtype() is kF32 here
    const auto m = static_cast<blasint>(num_tokens), n = static_cast<blasint>(out_features),
               k = static_cast<blasint>(in_features);
    if (num_tokens == 1) {
      cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, w, k, x, 1, 0.0f, out, 1);
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x, k, w, k, 0.0f, out, n);
    }
    if (bias != nullptr) {
      for (int64_t t = 0; t < num_tokens; ++t) {
        float* row = out + t * out_features;
        for (int64_t i = 0; i < out_features; ++i) row[i] += bias[i];
      }
    }
  }

  void rope(float* q, int64_t q_stride, float* k, int64_t k_stride, const int32_t* positions,
            const float* inv_freq, int64_t num_tokens, int64_t num_q_heads, int64_t num_kv_heads,
            int64_t head_dim) override {
    const int64_t half = head_dim / 2;
    pool_.parallel_for(num_tokens, 16, [&](int64_t b, int64_t e) {
      std::vector<float> cos_v(static_cast<std::size_t>(half)), sin_v(static_cast<std::size_t>(half));
      for (int64_t t = b; t < e; ++t) {
        // The angle is formed in fp32 as transformers does (position * inv_freq).
        const auto pos = static_cast<float>(positions[t]);
        for (int64_t i = 0; i < half; ++i) {
          const float angle = pos * inv_freq[i];
          cos_v[i] = std::cos(angle);
          sin_v[i] = std::sin(angle);
        }
        auto rotate = [&](float* v) {
          for (int64_t i = 0; i < half; ++i) {
            const float x1 = v[i], x2 = v[i + half];
            v[i] = x1 * cos_v[i] - x2 * sin_v[i];
            v[i + half] = x2 * cos_v[i] + x1 * sin_v[i];
          }
        };
        for (int64_t h = 0; h < num_q_heads; ++h) rotate(q + t * q_stride + h * head_dim);
        for (int64_t h = 0; h < num_kv_heads; ++h) rotate(k + t * k_stride + h * head_dim);
      }
    });
  }

  void silu_and_mul(float* out, const float* gate_up, int64_t num_tokens, int64_t width) override {
    pool_.parallel_for(num_tokens, 16, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const float* g = gate_up + t * 2 * width;
        const float* u = g + width;
        float* o = out + t * width;
        for (int64_t i = 0; i < width; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
      }
    });
  }

  // The KV cache is fp32 here (kv_dtype() keeps its default).
  void store_kv(void* k_cache_data, void* v_cache_data, const float* k, int64_t k_stride, const float* v,
                int64_t v_stride, const int32_t* slot_mapping, int64_t num_tokens, int64_t num_kv_heads,
                int64_t head_dim) override {
    auto* k_cache = static_cast<float*>(k_cache_data);
    auto* v_cache = static_cast<float*>(v_cache_data);
    const int64_t row = num_kv_heads * head_dim;
    for (int64_t t = 0; t < num_tokens; ++t) {
      if (slot_mapping[t] < 0) continue;
      const int64_t slot = slot_mapping[t];
      std::memcpy(k_cache + slot * row, k + t * k_stride, row * sizeof(float));
      std::memcpy(v_cache + slot * row, v + t * v_stride, row * sizeof(float));
    }
  }

  void paged_attention(float* out, const float* q, int64_t q_stride, const void* k_cache_data,
                       const void* v_cache_data, const AttentionBatch& batch, int64_t num_q_heads,
                       int64_t num_kv_heads, int64_t head_dim, float scale, int64_t sliding_window) override {
    const auto* k_cache = static_cast<const float*>(k_cache_data);
    const auto* v_cache = static_cast<const float*>(v_cache_data);
    const int64_t group = num_q_heads / num_kv_heads;
    const int64_t kv_row = num_kv_heads * head_dim;
    const int64_t work = static_cast<int64_t>(batch.num_seqs) * num_q_heads;
    pool_.parallel_for(work, 1, [&](int64_t b, int64_t e) {
      std::vector<float> scores;
      std::vector<int64_t> row_offset;  // token j's K/V row in the cache, in floats
      std::vector<float> acc(static_cast<std::size_t>(head_dim));
      for (int64_t item = b; item < e; ++item) {
        const int64_t s = item / num_q_heads, h = item % num_q_heads, kvh = h / group;
        const int32_t q_begin = batch.query_start[s], q_end = batch.query_start[s + 1];
        const int64_t ctx = batch.context_len[s];
        const int32_t* table = batch.block_tables + s * batch.max_blocks_per_seq;
        scores.resize(static_cast<std::size_t>(ctx));
        // Resolved once per (sequence, head) and shared by all its queries,
        // block by block, instead of a division per key and query.
        row_offset.resize(static_cast<std::size_t>(ctx));
        for (int64_t j = 0, blk = 0; j < ctx; ++blk) {
          const int64_t base = static_cast<int64_t>(table[blk]) * batch.block_size;
          for (int64_t off = 0; off < batch.block_size && j < ctx; ++off, ++j) {
            row_offset[j] = (base + off) * kv_row + kvh * head_dim;
          }
        }
        for (int32_t t = q_begin; t < q_end; ++t) {
          const int64_t pos = ctx - (q_end - t);
          const int64_t lo = sliding_window > 0 ? std::max<int64_t>(0, pos - sliding_window + 1) : 0;
          const float* qv = q + t * q_stride + h * head_dim;
          float max_score = -INFINITY;
          for (int64_t j = lo; j <= pos; ++j) {
            const float sc = dot(qv, k_cache + row_offset[j], head_dim) * scale;
            scores[j] = sc;
            max_score = std::max(max_score, sc);
          }
          float denom = 0;
          for (int64_t j = lo; j <= pos; ++j) {
            scores[j] = std::exp(scores[j] - max_score);
            denom += scores[j];
          }
          float* __restrict a = acc.data();
          std::fill(a, a + head_dim, 0.0f);
          for (int64_t j = lo; j <= pos; ++j) {
            const float* __restrict vv = v_cache + row_offset[j];
            const float p = scores[j];
            for (int64_t d = 0; d < head_dim; ++d) a[d] += p * vv[d];
          }
          float* o = out + (t * num_q_heads + h) * head_dim;
          const float inv = 1.0f / denom;
          for (int64_t d = 0; d < head_dim; ++d) o[d] = a[d] * inv;
        }
      }
    });
  }

  void gather_rows(float* out, const float* x, const int32_t* indices, int64_t num_rows, int64_t width) override {
    for (int64_t r = 0; r < num_rows; ++r) {
      std::memcpy(out + r * width, x + static_cast<int64_t>(indices[r]) * width, width * sizeof(float));
    }
  }

 private:
  ThreadPool pool_;
};

}  // namespace
}  // namespace cpu

std::unique_ptr<Backend> make_cpu_backend(int num_threads) {
  if (num_threads <= 0) num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::make_unique<cpu::CpuBackend>(num_threads);
}

}  // namespace llmctl::kernels
