// Batch-1 decode step time of the CUDA backend on a model of real shape with
// random weights (speed does not depend on values), against the HBM roofline:
// the bytes a step must read (every linear weight once in the backend's
// weight dtype, bf16 on CUDA; norms; one embedding row; the KV cache so far)
// over the device-to-device copy bandwidth measured in the same run.
//
// A step is what ModelRunner does per decode step minus host sampling: upload
// the step's inputs, DecoderModel::forward, copy the logits row back, sync.
// Timed twice: eager (each op launched from the host, as the engine runs
// today) and with the forward captured once as a CUDA graph and replayed
// (what decode-batch graphs will give the engine; checked to reproduce the
// eager logits bit for bit).
//
// Usage: cuda_decode_bench [--shape llama-1b|llama-8b] [--prompt N] [--steps N]
//        cuda_decode_bench --shape S --batch B [--context N] [--prefill N]
//   (throughput: decode at batch B as a CUDA graph vs the roofline, and a
//   prefill of N tokens vs the bf16 FLOP peak)
// Prints one JSON line per shape (and a human line on stderr).
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
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
  for (int i = 0; i < iters; ++i)
    check(cudaMemcpyAsync(i % 2 ? a : b, i % 2 ? b : a, bytes, cudaMemcpyDeviceToDevice), "copy");
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
  const char* dtype = "fp32";  // of the linear weights
  double weight_bytes = 0, step_bytes = 0, median_ms = 0, min_ms = 0, roofline_ms = 0;
  double graph_median_ms = 0;  // the same step with the forward replayed as one CUDA graph
};

llmctl::model::ModelWeights random_weights(const ModelConfig& c) {
  llmctl::model::ModelWeights weights;
  uint64_t seed = 1;
  for (const llmctl::model::WeightSpec& spec : llmctl::model::expected_weights(c)) {
    if (!spec.required) continue;  // tied lm_head
    int64_t n = 1;
    for (int64_t d : spec.shape) n *= d;
    std::vector<float> values(static_cast<std::size_t>(n));
    const bool is_norm = spec.shape.size() == 1;
    fill_random(values, is_norm ? 0.1f : 0.02f, seed++);
    if (is_norm) {
      for (float& x : values) x += 1.0f;
    }
    weights.put(spec.name, llmctl::model::Weight::from_f32(spec.shape, values));
  }
  return weights;
}

template <typename T>
T or_exit(llmctl::Result<T> r) {
  if (!r.is_ok()) {
    std::fprintf(stderr, "%s\n", r.status().to_string().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

BenchResult run_shape(const ModelConfig& c, int prompt, int steps, double bandwidth) {
  using namespace llmctl;
  model::ModelWeights weights = random_weights(c);
  BenchResult r;
  auto made = kernels::make_cuda_backend(0);
  if (!made.is_ok()) {
    std::fprintf(stderr, "%s\n", made.status().to_string().c_str());
    std::exit(1);
  }
  std::unique_ptr<Backend> backend = std::move(made).value();
  r.dtype = backend->weight_dtype() == kernels::WeightDtype::kBF16 ? "bf16" : "fp32";
  // Bytes of weights a decode step reads: linear weights (the logits head
  // included, which is the embedding table when tied) in the backend's
  // dtype, norms in fp32, and of an untied embedding only the looked-up row.
  const double linear_size = static_cast<double>(kernels::weight_dtype_size_bytes(backend->weight_dtype()));
  for (const model::WeightSpec& spec : model::expected_weights(c)) {
    if (!spec.required) continue;
    double n = 1;
    for (int64_t d : spec.shape) n *= static_cast<double>(d);
    if (spec.name == "model.embed_tokens.weight") {
      r.weight_bytes += c.tie_word_embeddings ? n * linear_size : static_cast<double>(c.hidden_size) * sizeof(float);
    } else {
      r.weight_bytes += spec.shape.size() == 2 ? n * linear_size : n * sizeof(float);
    }
  }
  auto created = model::DecoderModel::create(c, weights, backend.get());
  if (!created.is_ok()) {
    std::fprintf(stderr, "%s\n", created.status().to_string().c_str());
    std::exit(1);
  }
  std::unique_ptr<model::DecoderModel> m = std::move(created).value();
  weights = model::ModelWeights();  // host copy no longer needed

  const int32_t block_size = 16;
  const int32_t max_ctx = prompt + 2 * (steps + 5) + 8;  // eager and graph steps, 5 warm-ups each
  const int32_t num_blocks = (max_ctx + block_size - 1) / block_size;
  model::KvCacheView kv;
  kv.block_size = block_size;
  std::vector<std::unique_ptr<DeviceBuffer>> kv_bufs;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    for (int i = 0; i < 2; ++i) {
      auto buf = backend->allocate(static_cast<std::size_t>(num_blocks) * block_size * c.kv_size() *
                                   kernels::kv_dtype_size_bytes(backend->kv_dtype()));
      if (!buf.is_ok()) std::exit(1);
      (i == 0 ? kv.k : kv.v).push_back((*buf)->data());
      kv_bufs.push_back(std::move(buf).value());
    }
  }
  // Inputs laid out as ModelRunner packs them: ids, positions, slots,
  // query_start, context_len, block table, logits index.
  auto inputs_buf = backend->allocate(static_cast<std::size_t>(4 * prompt + 8 + num_blocks) * sizeof(int32_t));
  auto logits_buf = backend->allocate(static_cast<std::size_t>(c.vocab_size) * sizeof(float));
  if (!inputs_buf.is_ok() || !logits_buf.is_ok()) std::exit(1);
  std::vector<float> logits(static_cast<std::size_t>(c.vocab_size));

  auto upload = [&](int32_t start, int32_t count) {
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
    in.attention.num_tokens = count;
    in.num_logits = 1;
    in.logits_indices = base + 3 * count + 3 + num_blocks;
    return in;
  };
  auto forward = [&](const model::ForwardInputs& in) {
    auto st = m->forward(in, kv, (*logits_buf)->f32());
    if (!st.is_ok()) {
      std::fprintf(stderr, "%s\n", st.to_string().c_str());
      std::exit(1);
    }
  };
  auto finish = [&] {
    backend->copy_to_host(logits.data(), (*logits_buf)->data(), logits.size() * sizeof(float));
    backend->synchronize();
  };

  forward(upload(0, prompt));  // prefill
  finish();
  const int warmup = 5;
  int32_t pos = prompt;
  // Eager: every op launched from the host, as the engine runs today.
  std::vector<double> ms;
  for (int s = 0; s < warmup + steps; ++s, ++pos) {
    const auto t0 = std::chrono::steady_clock::now();
    forward(upload(pos, 1));
    finish();
    const auto t1 = std::chrono::steady_clock::now();
    if (s >= warmup) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  const std::vector<float> eager_last = logits;
  // Graph: the decode forward captured once and replayed per step (inputs
  // uploaded to the same buffer first). Replaying the last eager position
  // again must give the same logits bit for bit.
  const model::ForwardInputs decode_in = upload(pos - 1, 1);
  auto begun = kernels::CudaGraph::begin_capture(*backend);
  if (!begun.is_ok()) {
    std::fprintf(stderr, "%s\n", begun.to_string().c_str());
    std::exit(1);
  }
  forward(decode_in);
  auto captured = kernels::CudaGraph::end_capture(*backend);
  if (!captured.is_ok()) {
    std::fprintf(stderr, "%s\n", captured.status().to_string().c_str());
    std::exit(1);
  }
  std::unique_ptr<kernels::CudaGraph> graph = std::move(captured).value();
  graph->replay();
  finish();
  if (std::memcmp(logits.data(), eager_last.data(), logits.size() * sizeof(float)) != 0) {
    std::fprintf(stderr, "graph replay logits differ from the eager step's\n");
    std::exit(1);
  }
  std::vector<double> graph_ms;
  for (int s = 0; s < warmup + steps; ++s, ++pos) {
    const auto t0 = std::chrono::steady_clock::now();
    upload(pos, 1);
    graph->replay();
    finish();
    const auto t1 = std::chrono::steady_clock::now();
    if (s >= warmup) graph_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  for (float x : logits) {
    if (!std::isfinite(x)) {
      std::fprintf(stderr, "non-finite logits\n");
      std::exit(1);
    }
  }
  std::sort(graph_ms.begin(), graph_ms.end());
  r.graph_median_ms = graph_ms[graph_ms.size() / 2];
  std::sort(ms.begin(), ms.end());
  r.median_ms = ms[ms.size() / 2];
  r.min_ms = ms.front();
  // Bytes a decode step must move: the weights above, the mean KV context
  // (in the backend's KV dtype), the logits written.
  const double mean_ctx = prompt + steps + warmup;  // over both loops
  r.step_bytes = r.weight_bytes +
                 2.0 * static_cast<double>(c.num_hidden_layers) * mean_ctx * static_cast<double>(c.kv_size()) *
                     static_cast<double>(kernels::kv_dtype_size_bytes(backend->kv_dtype())) +
                 static_cast<double>(c.vocab_size) * sizeof(float);
  r.roofline_ms = r.step_bytes / bandwidth * 1e3;
  return r;
}

// The linear op alone at batch 1 on one model's weight shapes: bandwidth of
// the GEMV against the copy bandwidth, to tell kernel efficiency from the
// step's other costs. Several weight copies rotate so L2 (50 MB) never holds
// the next one.
void run_gemv_shapes(const ModelConfig& c, double bandwidth) {
  using namespace llmctl;
  auto made = kernels::make_cuda_backend(0);
  if (!made.is_ok()) std::exit(1);
  std::unique_ptr<Backend> backend = std::move(made).value();
  const int64_t h = c.hidden_size, f = c.intermediate_size;
  const int64_t shapes[][2] = {
      {c.q_size() + 2 * c.kv_size(), h}, {h, c.q_size()}, {2 * f, h}, {h, f}, {c.vocab_size, h}};
  const char* names[] = {"qkv", "o", "gate_up", "down", "lm_head"};
  for (int i = 0; i < 5; ++i) {
    const int64_t n = shapes[i][0], k = shapes[i][1];
    const int copies = static_cast<int>(std::max<int64_t>(2, 400'000'000 / (n * k * 2) + 1));
    std::vector<float> host(static_cast<std::size_t>(n * k));
    fill_random(host, 0.02f, 100 + static_cast<uint64_t>(i));
    std::vector<std::unique_ptr<DeviceBuffer>> w;
    for (int j = 0; j < copies; ++j) {
      auto buf = backend->allocate(static_cast<std::size_t>(n * k) * 2);
      if (!buf.is_ok()) std::exit(1);
      backend->copy_weight_to_device((*buf)->data(), host.data(), host.size());
      w.push_back(std::move(buf).value());
    }
    std::vector<float> xh(static_cast<std::size_t>(k));
    fill_random(xh, 1.0f, 7);
    auto x = backend->allocate(static_cast<std::size_t>(k) * sizeof(float));
    auto out = backend->allocate(static_cast<std::size_t>(n) * sizeof(float));
    if (!x.is_ok() || !out.is_ok()) std::exit(1);
    backend->copy_to_device((*x)->data(), xh.data(), xh.size() * sizeof(float));
    const int iters = 50;
    for (int j = 0; j < copies; ++j)
      backend->linear((*out)->f32(), (*x)->f32(), w[static_cast<std::size_t>(j)]->data(), nullptr, 1, n, k);
    backend->synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    for (int j = 0; j < iters; ++j) {
      backend->linear((*out)->f32(), (*x)->f32(), w[static_cast<std::size_t>(j % copies)]->data(), nullptr, 1, n, k);
    }
    backend->synchronize();
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / iters;
    const double gbs = static_cast<double>(n * k * 2) / (us * 1e-6) / 1e9;
    std::fprintf(stderr, "  gemv %-8s %6lld x %6lld bf16: %8.1f us, %6.0f GB/s, %5.1f%% of copy bandwidth\n", names[i],
                 static_cast<long long>(n), static_cast<long long>(k), us, gbs, 100.0 * gbs * 1e9 / bandwidth);
    std::printf("{\"gemv\":\"%s\",\"n\":%lld,\"k\":%lld,\"us\":%.2f,\"gbs\":%.1f,\"of_copy_bw\":%.4f}\n", names[i],
                static_cast<long long>(n), static_cast<long long>(k), us, gbs, gbs * 1e9 / bandwidth);
  }
}

// Every other op of a decode step at batch 1 (context ~256 tokens), each
// launched 200 times back to back: its cost per call, launch included, which
// is what a step pays for it per layer.
void run_op_profile(const ModelConfig& c) {
  using namespace llmctl;
  auto made = kernels::make_cuda_backend(0);
  if (!made.is_ok()) std::exit(1);
  std::unique_ptr<Backend> b = std::move(made).value();
  const int64_t H = c.hidden_size, D = c.head_dim, QH = c.num_attention_heads, KVH = c.num_key_value_heads;
  const int64_t qkv_width = c.q_size() + 2 * c.kv_size(), F = c.intermediate_size;
  const int32_t block_size = 16, ctx = 256, num_blocks = 32;  // 512-token table, 256 used
  auto alloc_random = [&](int64_t n, float scale, uint64_t seed) {
    std::vector<float> host(static_cast<std::size_t>(n));
    fill_random(host, scale, seed);
    auto buf = b->allocate(static_cast<std::size_t>(n) * sizeof(float));
    if (!buf.is_ok()) std::exit(1);
    b->copy_to_device((*buf)->data(), host.data(), host.size() * sizeof(float));
    return std::move(buf).value();
  };
  auto table = alloc_random(c.vocab_size * H, 0.02f, 1);
  auto weight = alloc_random(std::max(H, D), 1.0f, 2);
  auto x = alloc_random(H, 1.0f, 3), residual = alloc_random(H, 1.0f, 4), out = alloc_random(std::max(H, F), 1.0f, 5);
  auto qkv = alloc_random(qkv_width, 1.0f, 6), gate_up = alloc_random(2 * F, 1.0f, 7);
  auto inv_freq = alloc_random(D / 2, 0.01f, 8);
  const int64_t cache_elems = static_cast<int64_t>(num_blocks) * block_size * c.kv_size();
  // Zeros in the backend's KV dtype (speed does not depend on the values).
  const auto cache_bytes = static_cast<std::size_t>(cache_elems) * kernels::kv_dtype_size_bytes(b->kv_dtype());
  auto k_cache = b->allocate(cache_bytes), v_cache = b->allocate(cache_bytes);
  if (!k_cache.is_ok() || !v_cache.is_ok()) std::exit(1);
  std::vector<int32_t> ints = {7, ctx - 1, ctx - 1, 0, 1, ctx};  // id, position, slot, query_start[2], context_len
  for (int32_t j = 0; j < num_blocks; ++j) ints.push_back(j);
  ints.push_back(0);  // gather index
  auto ibuf = b->allocate(ints.size() * sizeof(int32_t));
  if (!ibuf.is_ok()) std::exit(1);
  b->copy_to_device((*ibuf)->data(), ints.data(), ints.size() * sizeof(int32_t));
  const int32_t* iv = (*ibuf)->i32();
  kernels::AttentionBatch batch;
  batch.num_seqs = 1;
  batch.query_start = iv + 3;
  batch.context_len = iv + 5;
  batch.block_tables = iv + 6;
  batch.max_blocks_per_seq = num_blocks;
  batch.block_size = block_size;
  float* q = qkv->f32();
  float* k = q + c.q_size();
  float* v = k + c.kv_size();
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  struct Op {
    const char* name;
    std::function<void()> run;
  };
  const std::vector<Op> ops = {
      {"embedding", [&] { b->embedding(x->f32(), iv, table->f32(), 1, H); }},
      {"rms_norm", [&] { b->rms_norm(out->f32(), x->f32(), weight->f32(), 1, H, 1e-5f); }},
      {"add_rms_norm", [&] { b->add_rms_norm(out->f32(), residual->f32(), x->f32(), weight->f32(), 1, H, 1e-5f); }},
      {"rope", [&] { b->rope(q, qkv_width, k, qkv_width, iv + 1, inv_freq->f32(), 1, QH, KVH, D); }},
      {"store_kv",
       [&] { b->store_kv((*k_cache)->data(), (*v_cache)->data(), k, qkv_width, v, qkv_width, iv + 2, 1, KVH, D); }},
      {"paged_attention",
       [&] {
         b->paged_attention(out->f32(), q, qkv_width, (*k_cache)->data(), (*v_cache)->data(), batch, QH, KVH, D, scale,
                            0);
       }},
      // With the token count known, a decode step takes the grouped kernel
      // (one block per KV head, split over keys); unknown, the per-query-head one.
      {"paged_attn_grouped",
       [&] {
         kernels::AttentionBatch known = batch;
         known.num_tokens = 1;
         b->paged_attention(out->f32(), q, qkv_width, (*k_cache)->data(), (*v_cache)->data(), known, QH, KVH, D,
                            scale, 0);
       }},
      {"silu_and_mul", [&] { b->silu_and_mul(out->f32(), gate_up->f32(), 1, F); }},
      {"gather_rows", [&] { b->gather_rows(out->f32(), x->f32(), iv + 6 + num_blocks, 1, H); }},
  };
  for (const Op& op : ops) {
    for (int i = 0; i < 20; ++i) op.run();
    b->synchronize();
    const int iters = 200;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) op.run();
    b->synchronize();
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / iters;
    std::fprintf(stderr, "  op %-16s %7.2f us per call\n", op.name, us);
    std::printf("{\"op\":\"%s\",\"us\":%.3f}\n", op.name, us);
  }
}

// Decode at batch B (every sequence with `context` tokens already cached)
// and one prefill of `prefill` tokens, timed with the forward captured as a
// CUDA graph for decode (as the engine will run it) and eager for prefill.
// Decode is compared with the HBM roofline (weights once + every sequence's
// KV) and with the FLOP roofline, taking the larger; prefill with the bf16
// dense FLOP peak (`peak_tflops`).
void run_throughput(const ModelConfig& c, int batch, int context, int prefill, int steps, double bandwidth,
                    double peak_tflops, const char* shape) {
  using namespace llmctl;
  std::unique_ptr<Backend> backend = or_exit(kernels::make_cuda_backend(0));
  std::unique_ptr<model::DecoderModel> m;
  {
    model::ModelWeights weights = random_weights(c);
    m = or_exit(model::DecoderModel::create(c, weights, backend.get()));
  }
  const int32_t block_size = 16;
  const int32_t per_seq = (context + steps + 32 + block_size - 1) / block_size;
  const int32_t prefill_blocks = (prefill + block_size - 1) / block_size;
  const int32_t num_blocks = std::max(batch * per_seq, prefill_blocks);
  model::KvCacheView kv;
  kv.block_size = block_size;
  std::vector<std::unique_ptr<DeviceBuffer>> kv_bufs;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    for (int i = 0; i < 2; ++i) {
      kv_bufs.push_back(or_exit(backend->allocate(static_cast<std::size_t>(num_blocks) * block_size * c.kv_size() *
                                                  kernels::kv_dtype_size_bytes(backend->kv_dtype()))));
      (i == 0 ? kv.k : kv.v).push_back(kv_bufs.back()->data());
    }
  }
  const int32_t max_tokens = std::max(batch, prefill);
  auto inputs = or_exit(backend->allocate(static_cast<std::size_t>(4 * max_tokens + 2 * batch + 8 + num_blocks) * 4));
  auto logits = or_exit(backend->allocate(static_cast<std::size_t>(batch) * c.vocab_size * sizeof(float)));
  // Packs ids, positions, slots, query_start, context_len, block tables and
  // logits indices for `seqs` sequences of `q` new tokens each at `start`.
  auto upload = [&](int32_t seqs, int32_t q, int32_t start, int32_t blocks_per_seq) {
    const int32_t t = seqs * q;
    std::vector<int32_t> p;
    for (int32_t i = 0; i < t; ++i) p.push_back((start + i) * 7919 % static_cast<int32_t>(c.vocab_size));
    for (int32_t s = 0; s < seqs; ++s)
      for (int32_t i = 0; i < q; ++i) p.push_back(start + i);
    for (int32_t s = 0; s < seqs; ++s)
      for (int32_t i = 0; i < q; ++i) p.push_back(s * blocks_per_seq * block_size + start + i);
    for (int32_t s = 0; s <= seqs; ++s) p.push_back(s * q);
    for (int32_t s = 0; s < seqs; ++s) p.push_back(start + q);
    for (int32_t s = 0; s < seqs; ++s)
      for (int32_t b = 0; b < blocks_per_seq; ++b) p.push_back(s * blocks_per_seq + b);
    for (int32_t s = 0; s < seqs; ++s) p.push_back(s * q + q - 1);
    backend->copy_to_device(inputs->data(), p.data(), p.size() * sizeof(int32_t));
    const int32_t* base = inputs->i32();
    model::ForwardInputs in;
    in.num_tokens = t;
    in.token_ids = base;
    in.positions = base + t;
    in.slot_mapping = base + 2 * t;
    in.attention.num_seqs = seqs;
    in.attention.query_start = base + 3 * t;
    in.attention.context_len = base + 3 * t + seqs + 1;
    in.attention.block_tables = base + 3 * t + 2 * seqs + 1;
    in.attention.max_blocks_per_seq = blocks_per_seq;
    in.attention.block_size = block_size;
    in.attention.num_tokens = t;
    in.num_logits = seqs;
    in.logits_indices = base + 3 * t + 2 * seqs + 1 + seqs * blocks_per_seq;
    return in;
  };
  auto forward = [&](const model::ForwardInputs& in) {
    auto st = m->forward(in, kv, logits->f32());
    if (!st.is_ok()) {
      std::fprintf(stderr, "%s\n", st.to_string().c_str());
      std::exit(1);
    }
  };
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const int64_t H = c.hidden_size;
  double linear_params = 0;  // per token, the logits head excluded
  for (const model::WeightSpec& spec : model::expected_weights(c)) {
    if (spec.shape.size() == 2 && spec.name != "model.embed_tokens.weight" && spec.name != "lm_head.weight")
      linear_params += static_cast<double>(spec.shape[0]) * static_cast<double>(spec.shape[1]);
  }
  const double head_params = static_cast<double>(c.vocab_size) * static_cast<double>(H);
  const double attn_per_ctx = 4.0 * static_cast<double>(c.num_hidden_layers * c.num_attention_heads * c.head_dim);

  // Prefill: one sequence of `prefill` tokens, logits for the last one.
  std::vector<double> prefill_ms;
  for (int i = 0; i < 4; ++i) {
    const model::ForwardInputs in = upload(1, prefill, 0, prefill_blocks);
    backend->synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    forward(in);
    backend->synchronize();
    if (i > 0) prefill_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  const double prefill_flops = 2.0 * prefill * linear_params + 2.0 * head_params +
                               attn_per_ctx * 0.5 * static_cast<double>(prefill) * static_cast<double>(prefill);
  const double pm = median(prefill_ms);
  const double prefill_tflops = prefill_flops / (pm * 1e-3) / 1e12;

  // Decode at batch B: capture once at a fixed position, replay per step.
  const int32_t pos = context;
  const model::ForwardInputs din = upload(batch, 1, pos, per_seq);
  forward(din);  // warm-up, also sizes the workspace
  backend->synchronize();
  if (auto st = kernels::CudaGraph::begin_capture(*backend); !st.is_ok()) {
    std::fprintf(stderr, "%s\n", st.to_string().c_str());
    std::exit(1);
  }
  forward(din);
  std::unique_ptr<kernels::CudaGraph> graph = or_exit(kernels::CudaGraph::end_capture(*backend));
  std::vector<double> step_ms;
  for (int s = 0; s < steps + 5; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    upload(batch, 1, pos + s % 16, per_seq);
    graph->replay();
    backend->synchronize();
    if (s >= 5) step_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  const double dm = median(step_ms);
  double weight_bytes = 2.0 * (linear_params + head_params);
  const double kv_bytes = 2.0 * static_cast<double>(c.num_hidden_layers) * batch * (context + 8.0) *
                          static_cast<double>(c.kv_size()) *
                          static_cast<double>(kernels::kv_dtype_size_bytes(backend->kv_dtype()));
  const double decode_flops = batch * (2.0 * (linear_params + head_params) + attn_per_ctx * (context + 8.0));
  const double mem_ms = (weight_bytes + kv_bytes) / bandwidth * 1e3;
  const double flop_ms = decode_flops / (peak_tflops * 1e12) * 1e3;
  const double roof_ms = std::max(mem_ms, flop_ms);
  std::fprintf(stderr,
               "%s prefill %d tokens: %.2f ms, %.0f TFLOP/s = %.1f%% of %.0f peak; decode batch %d ctx %d (graph): "
               "%.3f ms/step = %.0f tokens/s; roofline %.3f ms (memory %.3f, flops %.3f) = %.1f%%\n",
               shape, prefill, pm, prefill_tflops, 100.0 * prefill_tflops / peak_tflops, peak_tflops, batch, context, dm,
               batch / (dm * 1e-3), roof_ms, mem_ms, flop_ms, 100.0 * roof_ms / dm);
  std::printf(
      "{\"shape\":\"%s\",\"prefill_tokens\":%d,\"prefill_ms\":%.3f,\"prefill_tflops\":%.1f,\"peak_tflops\":%.0f,"
      "\"prefill_of_peak\":%.4f,\"batch\":%d,\"context\":%d,\"decode_step_ms\":%.4f,\"decode_tokens_per_s\":%.0f,"
      "\"decode_roofline_ms\":%.4f,\"decode_roofline_ratio\":%.4f}\n",
      shape, prefill, pm, prefill_tflops, peak_tflops, prefill_tflops / peak_tflops, batch, context, dm,
      batch / (dm * 1e-3), roof_ms, roof_ms / dm);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> shapes;
  int prompt = 128, steps = 64, batch = 0, context = 512, prefill = 2048;
  double peak_tflops = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--shape" && i + 1 < argc) {
      shapes.push_back(argv[++i]);
    } else if (a == "--prompt" && i + 1 < argc) {
      prompt = std::atoi(argv[++i]);
    } else if (a == "--steps" && i + 1 < argc) {
      steps = std::atoi(argv[++i]);
    } else if (a == "--batch" && i + 1 < argc) {
      batch = std::atoi(argv[++i]);
    } else if (a == "--context" && i + 1 < argc) {
      context = std::atoi(argv[++i]);
    } else if (a == "--prefill" && i + 1 < argc) {
      prefill = std::atoi(argv[++i]);
    } else if (a == "--peak-tflops" && i + 1 < argc) {
      peak_tflops = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--shape llama-1b|llama-8b]... [--prompt N] [--steps N] [--batch B [--context N] "
                   "[--prefill N] [--peak-tflops T]]\n", argv[0]);
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
    if (batch > 0) {
      // Dense bf16 tensor-core peak of the SXM Hopper cards (H100 and H200
      // share the same SMs and clocks); --peak-tflops for anything else.
      const double peak = peak_tflops > 0 ? peak_tflops : 989.4;
      run_throughput(*cfg, batch, context, prefill, steps, bw, peak, shape.c_str());
      continue;
    }
    run_gemv_shapes(*cfg, bw);
    run_op_profile(*cfg);
    const BenchResult r = run_shape(*cfg, prompt, steps, bw);
    std::fprintf(stderr,
                 "%s %s: weights %.2f GB, step reads %.2f GB; decode step median %.3f ms (min %.3f); "
                 "roofline %.3f ms; ratio %.1f%%; with the forward as a CUDA graph %.3f ms, ratio %.1f%%\n",
                 shape.c_str(), r.dtype, r.weight_bytes / 1e9, r.step_bytes / 1e9, r.median_ms, r.min_ms, r.roofline_ms,
                 100.0 * r.roofline_ms / r.median_ms, r.graph_median_ms, 100.0 * r.roofline_ms / r.graph_median_ms);
    std::printf(
        "{\"shape\":\"%s\",\"weights\":\"%s\",\"device\":\"%s\",\"copy_bandwidth_gbs\":%.1f,\"weight_bytes\":%.0f,"
        "\"step_bytes\":%.0f,\"prompt\":%d,\"steps\":%d,\"step_ms_median\":%.4f,\"step_ms_min\":%.4f,"
        "\"roofline_ms\":%.4f,\"roofline_ratio\":%.4f,\"graph_step_ms_median\":%.4f,\"graph_roofline_ratio\":%.4f}\n",
        shape.c_str(), r.dtype, prop.name, bw / 1e9, r.weight_bytes, r.step_bytes, prompt, steps, r.median_ms, r.min_ms,
        r.roofline_ms, r.roofline_ms / r.median_ms, r.graph_median_ms, r.roofline_ms / r.graph_median_ms);
    std::fflush(stdout);
  }
  return 0;
}
