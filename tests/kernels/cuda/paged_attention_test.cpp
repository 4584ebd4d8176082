// Paged attention on the GPU against the CPU backend: decode (split over keys
// when the batch is small), prefill, chunked prefill and mixed batches, GQA,
// sliding windows, scattered blocks; with the token count known, the
// tensor-core prefill kernel and, for decode-only steps, the KV-head-grouped
// kernel (split over keys when the batch is small) too. Each case runs twice
// on one backend, which also checks that the split-decode counters are left
// at zero.
// The GPU's cache is bf16 and the CPU's fp32: the CPU twin gets the same
// random K/V rounded to bf16, so what is left is fp32 arithmetic order (and
// bf16 operands on the tensor-core path).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>

#include "cuda_test_util.h"
#include "kernels/cuda/cuda_ops.h"

namespace llmctl::kernels::test {
namespace {

// An environment variable set for one scope (the kernels read theirs at
// each launch), its earlier value (or absence) back however the scope ends.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name); old != nullptr) old_ = old;
    setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

struct SeqShape {
  int32_t num_queries;  // the step's tokens of this sequence (its last ones)
  int32_t context_len;  // tokens in the cache, the step's included
};

void check_attention(Backends& b, std::mt19937& rng, const std::vector<SeqShape>& seqs, int64_t qh, int64_t kvh,
                     int64_t head_dim, int64_t sliding_window) {
  const int32_t block_size = 16;
  std::vector<int32_t> query_start{0}, context_len;
  int32_t max_blocks = 1, total_blocks = 0;
  for (const SeqShape& s : seqs) {
    query_start.push_back(query_start.back() + s.num_queries);
    context_len.push_back(s.context_len);
    const int32_t blocks = (s.context_len + block_size - 1) / block_size;
    max_blocks = std::max(max_blocks, blocks);
    total_blocks += blocks;
  }
  const auto num_seqs = static_cast<int32_t>(seqs.size());
  // Every sequence's blocks are scattered over a shuffled pool; unused table
  // entries point at block 0 as the engine leaves them.
  const int32_t pool = total_blocks + 3;
  std::vector<int32_t> ids(static_cast<std::size_t>(pool));
  for (int32_t i = 0; i < pool; ++i) ids[static_cast<std::size_t>(i)] = i;
  std::shuffle(ids.begin(), ids.end(), rng);
  std::vector<int32_t> tables(static_cast<std::size_t>(num_seqs) * max_blocks, 0);
  int32_t next = 0;
  for (int32_t s = 0; s < num_seqs; ++s) {
    const int32_t blocks = (context_len[static_cast<std::size_t>(s)] + block_size - 1) / block_size;
    for (int32_t j = 0; j < blocks; ++j)
      tables[static_cast<std::size_t>(s * max_blocks + j)] = ids[static_cast<std::size_t>(next++)];
  }
  const int64_t tokens = query_start.back();
  const int64_t q_stride = (qh + 2 * kvh) * head_dim;  // q inside fused qkv rows
  const auto q = random_floats(rng, tokens * q_stride, -2.0f, 2.0f);
  const int64_t cache_elems = static_cast<int64_t>(pool) * block_size * kvh * head_dim;
  const auto k_bits = bf16_bits_of(random_floats(rng, cache_elems));
  const auto v_bits = bf16_bits_of(random_floats(rng, cache_elems));
  const auto k_cache = floats_of_bf16_bits(k_bits), v_cache = floats_of_bf16_bits(v_bits);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));

  AttentionBatch cpu_batch;
  cpu_batch.num_seqs = num_seqs;
  cpu_batch.query_start = query_start.data();
  cpu_batch.context_len = context_len.data();
  cpu_batch.block_tables = tables.data();
  cpu_batch.max_blocks_per_seq = max_blocks;
  cpu_batch.block_size = block_size;
  std::vector<float> want(static_cast<std::size_t>(tokens * qh * head_dim));
  b.cpu->paged_attention(want.data(), q.data(), q_stride, k_cache.data(), v_cache.data(), cpu_batch, qh, kvh, head_dim,
                         scale, sliding_window);

  REQUIRE(b.gpu->kv_dtype() == KvDtype::kBF16);
  GuardedArray<float> d_q(*b.gpu, tokens * q_stride, &q), d_out(*b.gpu, tokens * qh * head_dim);
  GuardedArray<uint16_t> d_k(*b.gpu, cache_elems, &k_bits), d_v(*b.gpu, cache_elems, &v_bits);
  GuardedArray<int32_t> d_qs(*b.gpu, num_seqs + 1, &query_start), d_ctx(*b.gpu, num_seqs, &context_len),
      d_tables(*b.gpu, static_cast<int64_t>(tables.size()), &tables);
  AttentionBatch gpu_batch = cpu_batch;
  gpu_batch.query_start = d_qs.data();
  gpu_batch.context_len = d_ctx.data();
  gpu_batch.block_tables = d_tables.data();
  for (int run = 0; run < 2; ++run) {
    CAPTURE(run);
    b.gpu->paged_attention(d_out.data(), d_q.data(), q_stride, d_k.data(), d_v.data(), gpu_batch, qh, kvh, head_dim,
                           scale, sliding_window);
    check_close(d_out.download(), want, 2e-5, 1e-4, "paged_attention");
  }
  // The kernels only read the cache.
  CHECK(d_k.download() == k_bits);
  CHECK(d_v.download() == v_bits);
  // With the token count known, head dims 64 and 128 take the tensor-core
  // kernels: flash prefill for steps with prefill tokens, grouped decode for
  // decode steps of at least 32 (sequence, KV head) pairs and at most 8
  // query heads per KV head (decode_attention.cu). bf16 operands (8-bit
  // mantissa) give about 1e-2 of error on outputs of magnitude 1; smaller
  // decode steps stay on the fp32 per-query-head kernel and its tolerance.
  gpu_batch.num_tokens = tokens;
  const bool grouped_decode = tokens == num_seqs && static_cast<int64_t>(num_seqs) * kvh >= 32 && qh / kvh <= 8;
  const bool tensor_cores = (head_dim == 64 || head_dim == 128) && (tokens > num_seqs || grouped_decode);
  for (int run = 0; run < 2; ++run) {
    CAPTURE(run);
    b.gpu->paged_attention(d_out.data(), d_q.data(), q_stride, d_k.data(), d_v.data(), gpu_batch, qh, kvh, head_dim,
                           scale, sliding_window);
    if (tensor_cores) {
      check_close(d_out.download(), want, 2e-2, 2e-2, "paged_attention (tensor cores)");
    } else {
      check_close(d_out.download(), want, 2e-5, 1e-4, "paged_attention (token count known)");
    }
  }
  // The engine's order puts decode rows first and says how many: a mixed
  // step then runs them on the decode kernels and the rest on its own.
  int32_t decodes = 0;
  while (decodes < num_seqs && seqs[static_cast<std::size_t>(decodes)].num_queries == 1) ++decodes;
  if (decodes > 0 && decodes < num_seqs && tokens > num_seqs) {
    gpu_batch.num_decode_seqs = decodes;
    CAPTURE(decodes);
    for (int run = 0; run < 2; ++run) {
      CAPTURE(run);
      // A fresh output: a row neither part writes keeps the sentinel and fails.
      GuardedArray<float> d_split(*b.gpu, tokens * qh * head_dim);
      b.gpu->paged_attention(d_split.data(), d_q.data(), q_stride, d_k.data(), d_v.data(), gpu_batch, qh, kvh,
                             head_dim, scale, sliding_window);
      if (tensor_cores) {
        check_close(d_split.download(), want, 2e-2, 2e-2, "paged_attention (decode rows apart, tensor cores)");
      } else {
        check_close(d_split.download(), want, 2e-5, 1e-4, "paged_attention (decode rows apart)");
      }
    }
  }
}

TEST_CASE("cuda paged_attention matches the cpu") {
  Backends b;
  std::mt19937 rng(31);
  // 70: not a multiple of a lane's 4 elements, so the element-by-element reads.
  for (const int64_t head_dim : {8, 64, 70, 128, 256}) {
    CAPTURE(head_dim);
    SUBCASE("decode batch, GQA 4:1, contexts from 1 to past many blocks") {
      check_attention(b, rng, {{1, 1}, {1, 17}, {1, 300}, {1, 1000}}, 8, 2, head_dim, 0);
    }
    SUBCASE("decode of long and short contexts, split over keys and merged") {
      check_attention(b, rng, {{1, 5000}, {1, 3}, {1, 2049}}, 8, 2, head_dim, 0);
      check_attention(b, rng, {{1, 777}}, 32, 8, head_dim, 100);  // sliding window within a split decode
    }
    SUBCASE("decode split over keys: GQA 8:1 long and short, one sequence of an 8B shape, and grouped batches") {
      check_attention(b, rng, {{1, 3000}, {1, 40}}, 16, 2, head_dim, 0);  // 64 splits of the 3,008-key table
      check_attention(b, rng, {{1, 640}}, 32, 8, head_dim, 0);
      check_attention(b, rng, {{1, 5}, {1, 1}, {1, 90}}, 8, 8, head_dim, 0);  // splits with no keys at all
      check_attention(b, rng, {{1, 700}, {1, 33}}, 14, 2, head_dim, 0);      // GQA 7:1 (Qwen2.5-0.5B)
      check_attention(b, rng, {{1, 300}}, 12, 4, head_dim, 20);              // GQA 3:1, sliding window
      // At least 32 (sequence, KV head) pairs: the grouped kernel, split over keys.
      check_attention(b, rng, {{1, 3000}, {1, 40}, {1, 1000}, {1, 5}}, 32, 8, head_dim, 0);
      check_attention(b, rng, {{1, 2000}, {1, 700}, {1, 33}, {1, 1}}, 56, 8, head_dim, 0);  // GQA 7:1
      check_attention(b, rng, {{1, 900}, {1, 400}, {1, 64}, {1, 7}}, 32, 8, head_dim, 100);  // sliding window
    }
    SUBCASE("prefill of several sequences, no GQA") {
      check_attention(b, rng, {{5, 5}, {40, 40}, {130, 130}}, 4, 4, head_dim, 0);
    }
    SUBCASE("chunked prefill and decode mixed in one step, GQA 8:1") {
      check_attention(b, rng, {{7, 50}, {1, 33}, {64, 64}, {100, 2100}}, 16, 2, head_dim, 0);
    }
    SUBCASE("decode rows first, then prefill rows (the scheduler's order): each part on its own kernel") {
      check_attention(b, rng, {{1, 33}, {1, 700}, {1, 5}, {7, 50}, {64, 64}, {1, 90}}, 32, 8, head_dim, 0);
      std::vector<SeqShape> mixed;
      for (int32_t i = 0; i < 40; ++i) mixed.push_back({1, 1 + (i * 53) % 900});
      mixed.push_back({100, 300});
      check_attention(b, rng, mixed, 16, 4, head_dim, 0);
      check_attention(b, rng, {{1, 200}, {1, 17}, {50, 90}}, 8, 2, head_dim, 16);  // sliding window
    }
    SUBCASE("sliding window") { check_attention(b, rng, {{1, 200}, {50, 90}, {3, 16}}, 4, 2, head_dim, 16); }
    SUBCASE("batched decode of many sequences: one block per KV head serves its query heads") {
      std::vector<SeqShape> many;
      for (int32_t i = 0; i < 40; ++i) many.push_back({1, 1 + (i * 37) % 600});
      check_attention(b, rng, many, 16, 4, head_dim, 0);   // GQA 4:1, 160 (sequence, KV head) blocks
      check_attention(b, rng, many, 32, 4, head_dim, 0);   // GQA 8:1
      check_attention(b, rng, many, 8, 4, head_dim, 0);    // GQA 2:1
      check_attention(b, rng, many, 4, 4, head_dim, 50);   // no GQA, sliding window
      // 72 x 8 = 576 (sequence, KV head) pairs: enough to run unsplit.
      std::vector<SeqShape> wide;
      for (int32_t i = 0; i < 72; ++i) wide.push_back({1, 1 + (i * 61) % 700});
      check_attention(b, rng, wide, 32, 8, head_dim, 0);
      check_attention(b, rng, wide, 24, 8, head_dim, 0);  // GQA 3:1
    }
    SUBCASE("long prefill: many query and key tiles, partial last tiles") {
      check_attention(b, rng, {{333, 333}, {129, 700}}, 8, 2, head_dim, 0);
      check_attention(b, rng, {{200, 260}}, 4, 1, head_dim, 100);
    }
    SUBCASE("prefill on the two-m-tile flash kernel (128 queries a block, Q staged in shared memory)") {
      // Opt-in for now (flash_prefill.cu): on for every prefill step here.
      const ScopedEnv wide("LLMCTL_FLASH_WIDE_MIN_QUERIES", "1");
      const int64_t launches = cuda::flash_prefill_wide_launches();
      // 700 = 5 x 128 + 60 and 130 = 128 + 2: last tiles where only some
      // warps, and only the first m-tile of a warp, hold queries.
      check_attention(b, rng, {{700, 700}, {130, 900}}, 8, 2, head_dim, 0);
      check_attention(b, rng, {{5, 5}, {40, 40}, {130, 130}}, 4, 4, head_dim, 0);
      check_attention(b, rng, {{600, 650}}, 16, 4, head_dim, 100);  // chunked, sliding window
      check_attention(b, rng, {{1, 200}, {50, 90}, {3, 16}}, 4, 2, head_dim, 16);
      // Decode rows first, then prefill rows: each part on its own kernel.
      check_attention(b, rng, {{1, 33}, {1, 500}, {520, 600}}, 32, 8, head_dim, 0);
      check_attention(b, rng, {{1, 33}, {1, 700}, {1, 5}, {7, 50}, {64, 64}, {1, 90}}, 32, 8, head_dim, 0);
      // Each shape's two runs with the token count known took it (head dims
      // 64 and 128 only; the others have no tensor-core kernel).
      const int64_t ran = cuda::flash_prefill_wide_launches() - launches;
      if (head_dim == 64 || head_dim == 128) {
        CHECK(ran >= 12);
      } else {
        CHECK(ran == 0);
      }
    }
  }
}

}  // namespace
}  // namespace llmctl::kernels::test
