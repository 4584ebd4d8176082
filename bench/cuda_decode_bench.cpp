// Batch-1 decode step time of the CUDA backend on a model of real shape with
// random weights (speed does not depend on values), against the HBM roofline:
// the bytes a step must read (every weight once, the KV cache so far) over the
// device-to-device copy bandwidth measured in the same run.
//
// A step is what ModelRunner does per decode step minus host sampling: upload
// the step's inputs, DecoderModel::forward, copy the logits row back, sync.
//
// Usage: cuda_decode_bench [--shape llama-1b|llama-8b] [--prompt N] [--steps N]
// Prints one JSON line per shape (and a human line on stderr).
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "kernels/cuda_backend.h"
#include "runtime/model/decoder_model.h"
#include "runtime/model/model_config.h"
#include "runtime/model/model_weights.h"

namespace {

using llmctl::kernels::Backend;
using llmctl::kernels::DeviceBuffer;
using llmctl::model::ModelConfig;

// Llama-3.2-1B and Llama-3.1-8B as their config.json describes them.
const char* kLlama1b = R"({"architectures":["LlamaForCausalLM"],"hidden_size":2048,"intermediate_size":8192,
 "num_hidden_layers":16,"num_attention_heads":32,"num_key_value_heads":8,"head_dim":64,"vocab_size":128256,
 "max_position_embeddings":131072,"rms_norm_eps":1e-5,"rope_theta":500000.0,"tie_word_embeddings":true,
 "rope_scaling":{"rope_type":"llama3","factor":32.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
 "original_max_position_embeddings":8192}})";
const char* kLlama8b = R"({"architectures":["LlamaForCausalLM"],"hidden_size":4096,"intermediate_size":14336,
 "num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":8,"head_dim":128,"vocab_size":128256,
 "max_position_embeddings":131072,"rms_norm_eps":1e-5,"rope_theta":500000.0,"tie_word_embeddings":false,
 "rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
 "original_max_position_embeddings":8192}})";

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

// Device copy bandwidth (bytes read + written per second) over 1 GiB buffers.
double measure_copy_bandwidth() {
  const std::size_t bytes = std::size_t{1} << 30;
  void *a = nullptr, *b = nullptr;
  check(cudaMalloc(&a, bytes), "cudaMalloc");
  check(cudaMalloc(&b, bytes), "cudaMalloc");
  check(cudaMemset(a, 1, bytes), "cudaMemset");
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "event");
  check(cudaEventCreate(&stop), "event");
  for (int i = 0; i < 3; ++i) check(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice), "warm copy");
  const int iters = 20;
  check(cudaEventRecord(start), "record");
  for (int i = 0; i < iters; ++i) check(cudaMemcpyAsync(i % 2 ? a : b, i % 2 ? b : a, bytes, cudaMemcpyDeviceToDevice), "copy");
  check(cudaEventRecord(stop), "record");
  check(cudaEventSynchronize(stop), "sync");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, start, stop), "elapsed");
  cudaFree(a);
  cudaFree(b);
  return 2.0 * static_cast<double>(bytes) * iters / (static_cast<double>(ms) * 1e-3);
}

// Uniform values in [-scale, scale) from a per-thread xorshift: fast enough
// for billions of weights.
void fill_random(std::vector<float>& v, float scale, uint64_t seed) {
  const std::size_t n = v.size();
  const unsigned threads = std::max(1u, std::min(16u, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      uint64_t s = seed * 0x9E3779B97F4A7C15ull + t + 1;
      for (std::size_t i = n * t / threads; i < n * (t + 1) / threads; ++i) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v[i] = (static_cast<float>(s >> 40) / static_cast<float>(1 << 24) * 2.0f - 1.0f) * scale;
      }
    });
  }
  for (auto& th : pool) th.join();
}

struct BenchResult {
  double weight_bytes = 0, step_bytes = 0, median_ms = 0, min_ms = 0, roofline_ms = 0;
};

BenchResult run_shape(const ModelConfig& c, int prompt, int steps, double bandwidth) {
  using namespace llmctl;
  model::ModelWeights weights;
  uint64_t seed = 1;
  for (const model::WeightSpec& spec : model::expected_weights(c)) {
    if (!spec.required) continue;  // tied lm_head
    model::Weight w;
    w.shape = spec.shape;
    int64_t n = 1;
    for (int64_t d : spec.shape) n *= d;
    w.data.resize(static_cast<std::size_t>(n));
    const bool is_norm = spec.shape.size() == 1;
    fill_random(w.data, is_norm ? 0.1f : 0.02f, seed++);
    if (is_norm) {
      for (float& x : w.data) x += 1.0f;
    }
    weights.put(spec.name, std::move(w));
  }
  BenchResult r;
  r.weight_bytes = static_cast<double>(weights.total_bytes());

  auto made = kernels::make_cuda_backend(0);
  if (!made.is_ok()) {
    std::fprintf(stderr, "%s\n", made.status().to_string().c_str());
    std::exit(1);
  }
  std::unique_ptr<Backend> backend = std::move(made).value();
  auto created = model::DecoderModel::create(c, weights, backend.get());
  if (!created.is_ok()) {
    std::fprintf(stderr, "%s\n", created.status().to_string().c_str());
    std::exit(1);
  }
  std::unique_ptr<model::DecoderModel> m = std::move(created).value();
  weights = model::ModelWeights();  // host copy no longer needed

  const int32_t block_size = 16;
  const int32_t max_ctx = prompt + steps + 8;
  const int32_t num_blocks = (max_ctx + block_size - 1) / block_size;
  model::KvCacheView kv;
  kv.block_size = block_size;
  std::vector<std::unique_ptr<DeviceBuffer>> kv_bufs;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    for (int i = 0; i < 2; ++i) {
      auto buf = backend->allocate(static_cast<std::size_t>(num_blocks) * block_size * c.kv_size() * sizeof(float));
      if (!buf.is_ok()) std::exit(1);
      (i == 0 ? kv.k : kv.v).push_back((*buf)->f32());
      kv_bufs.push_back(std::move(buf).value());
    }
  }
  // Inputs laid out as ModelRunner packs them: ids, positions, slots,
  // query_start, context_len, block table, logits index.
  auto inputs_buf = backend->allocate(static_cast<std::size_t>(4 * prompt + 8 + num_blocks) * sizeof(int32_t));
  auto logits_buf = backend->allocate(static_cast<std::size_t>(c.vocab_size) * sizeof(float));
  if (!inputs_buf.is_ok() || !logits_buf.is_ok()) std::exit(1);
  std::vector<float> logits(static_cast<std::size_t>(c.vocab_size));

  auto step = [&](int32_t start, int32_t count) {
    std::vector<int32_t> packed;
    for (int32_t i = 0; i < count; ++i) packed.push_back((start + i) * 7919 % static_cast<int32_t>(c.vocab_size));
    for (int32_t i = 0; i < count; ++i) packed.push_back(start + i);
    for (int32_t i = 0; i < count; ++i) packed.push_back(start + i);  // block j is block j: slot = position
    packed.push_back(0);
    packed.push_back(count);
    packed.push_back(start + count);
    for (int32_t b = 0; b < num_blocks; ++b) packed.push_back(b);
    packed.push_back(count - 1);
    backend->copy_to_device((*inputs_buf)->data(), packed.data(), packed.size() * sizeof(int32_t));
    const int32_t* base = (*inputs_buf)->i32();
    model::ForwardInputs in;
    in.num_tokens = count;
    in.token_ids = base;
    in.positions = base + count;
    in.slot_mapping = base + 2 * count;
    in.attention.num_seqs = 1;
    in.attention.query_start = base + 3 * count;
    in.attention.context_len = base + 3 * count + 2;
    in.attention.block_tables = base + 3 * count + 3;
    in.attention.max_blocks_per_seq = num_blocks;
    in.attention.block_size = block_size;
    in.num_logits = 1;
    in.logits_indices = base + 3 * count + 3 + num_blocks;
    auto st = m->forward(in, kv, (*logits_buf)->f32());
    if (!st.is_ok()) {
      std::fprintf(stderr, "%s\n", st.to_string().c_str());
      std::exit(1);
    }
    backend->copy_to_host(logits.data(), (*logits_buf)->data(), logits.size() * sizeof(float));
    backend->synchronize();
  };

  step(0, prompt);  // prefill
  const int warmup = 5;
  std::vector<double> ms;
  for (int s = 0; s < warmup + steps; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    step(prompt + s, 1);
    const auto t1 = std::chrono::steady_clock::now();
    if (s >= warmup) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  for (float x : logits) {
    if (!std::isfinite(x)) {
      std::fprintf(stderr, "non-finite logits\n");
      std::exit(1);
    }
  }
  std::sort(ms.begin(), ms.end());
  r.median_ms = ms[ms.size() / 2];
  r.min_ms = ms.front();
  // Bytes a decode step must move: every weight once (a tied embedding is read
  // whole by the logits GEMV), the mean KV context, the logits written.
  const double mean_ctx = prompt + steps / 2.0 + warmup;
  r.step_bytes = r.weight_bytes + 2.0 * static_cast<double>(c.num_hidden_layers) * mean_ctx *
                                      static_cast<double>(c.kv_size()) * sizeof(float) +
                 static_cast<double>(c.vocab_size) * sizeof(float);
  r.roofline_ms = r.step_bytes / bandwidth * 1e3;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> shapes;
  int prompt = 128, steps = 64;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--shape" && i + 1 < argc) {
      shapes.push_back(argv[++i]);
    } else if (a == "--prompt" && i + 1 < argc) {
      prompt = std::atoi(argv[++i]);
    } else if (a == "--steps" && i + 1 < argc) {
      steps = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--shape llama-1b|llama-8b]... [--prompt N] [--steps N]\n", argv[0]);
      return 2;
    }
  }
  if (shapes.empty()) shapes.push_back("llama-1b");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  const double bw = measure_copy_bandwidth();
  std::fprintf(stderr, "device: %s, copy bandwidth %.0f GB/s (read + write)\n", prop.name, bw / 1e9);
  for (const std::string& shape : shapes) {
    const char* json = shape == "llama-8b" ? kLlama8b : shape == "llama-1b" ? kLlama1b : nullptr;
    if (json == nullptr) {
      std::fprintf(stderr, "unknown shape %s\n", shape.c_str());
      return 2;
    }
    auto cfg = llmctl::model::parse_model_config(json);
    if (!cfg.is_ok()) {
      std::fprintf(stderr, "%s\n", cfg.status().to_string().c_str());
      return 1;
    }
    const BenchResult r = run_shape(*cfg, prompt, steps, bw);
    std::fprintf(stderr,
                 "%s fp32: weights %.2f GB, step reads %.2f GB; decode step median %.3f ms (min %.3f); "
                 "roofline %.3f ms; ratio %.1f%%\n",
                 shape.c_str(), r.weight_bytes / 1e9, r.step_bytes / 1e9, r.median_ms, r.min_ms, r.roofline_ms,
                 100.0 * r.roofline_ms / r.median_ms);
    std::printf(
        "{\"shape\":\"%s\",\"weights\":\"fp32\",\"device\":\"%s\",\"copy_bandwidth_gbs\":%.1f,\"weight_bytes\":%.0f,"
        "\"step_bytes\":%.0f,\"prompt\":%d,\"steps\":%d,\"step_ms_median\":%.4f,\"step_ms_min\":%.4f,"
        "\"roofline_ms\":%.4f,\"roofline_ratio\":%.4f}\n",
        shape.c_str(), prop.name, bw / 1e9, r.weight_bytes, r.step_bytes, prompt, steps, r.median_ms, r.min_ms,
        r.roofline_ms, r.roofline_ms / r.median_ms);
    std::fflush(stdout);
  }
  return 0;
}
