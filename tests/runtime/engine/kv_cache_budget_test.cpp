// KV-cache sizing from --gpu-memory-utilization, checked against figures
// worked out by hand.
#include <doctest/doctest.h>

#include "runtime/engine/kv_cache_budget.h"

namespace llmctl::engine {
namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;

TEST_CASE("the KV cache gets what utilization allows minus what is already used") {
  KvCacheDemand d;
  d.total_bytes = 80 * kGiB;
  d.free_after_profile = 60 * kGiB;  // 20 GiB of weights and activations
  d.utilization = 0.9;               // 72 GiB allowed -> 52 GiB for the cache
  d.block_bytes = 2 * 1024 * 1024;   // 2 MiB per block
  d.block_size = 16;
  d.max_model_len = 4096;            // 256 blocks per request
  auto b = plan_kv_cache(d);
  REQUIRE(b.is_ok());
  CHECK(b->num_blocks == 52 * 512);
  CHECK(b->tokens == int64_t{52} * 512 * 16);
  CHECK(b->bytes == int64_t{52} * kGiB);
  CHECK(b->max_concurrency == doctest::Approx(52.0 * 512 / 256));
  CHECK(b->summary.find("maximum concurrency for 4096-token requests: 104.00x") != std::string::npos);
}

TEST_CASE("a block's bytes count the KV element size: a bf16 cache holds twice the tokens") {
  // Llama-3.1-8B: 32 layers, 8 KV heads of 128; 16-token blocks.
  CHECK(kv_block_bytes(32, 16, 8, 128, kernels::KvDtype::kF32) == int64_t{4} * 1024 * 1024);
  CHECK(kv_block_bytes(32, 16, 8, 128, kernels::KvDtype::kBF16) == int64_t{2} * 1024 * 1024);
  KvCacheDemand d;
  d.total_bytes = 80 * kGiB;
  d.free_after_profile = 60 * kGiB;
  d.utilization = 0.9;  // 52 GiB for the cache
  d.block_size = 16;
  d.max_model_len = 4096;
  d.block_bytes = kv_block_bytes(32, 16, 8, 128, kernels::KvDtype::kF32);
  auto fp32 = plan_kv_cache(d);
  d.block_bytes = kv_block_bytes(32, 16, 8, 128, kernels::KvDtype::kBF16);
  d.dtype = kernels::KvDtype::kBF16;
  auto bf16 = plan_kv_cache(d);
  REQUIRE(fp32.is_ok());
  REQUIRE(bf16.is_ok());
  CHECK(fp32->tokens == int64_t{52} * 256 * 16);
  CHECK(bf16->tokens == 2 * fp32->tokens);
  CHECK(bf16->max_concurrency == doctest::Approx(2 * fp32->max_concurrency));
  CHECK(fp32->summary.find("GiB of fp32") != std::string::npos);
  CHECK(bf16->summary.find("= 425984 tokens in 52.00 GiB of bf16") != std::string::npos);
}

TEST_CASE("too little room names the flags to change") {
  KvCacheDemand d;
  d.total_bytes = 16 * kGiB;
  d.free_after_profile = 2 * kGiB;  // 14 GiB used
  d.utilization = 0.9;              // 14.4 GiB allowed -> 0.4 GiB left
  d.block_bytes = 8 * 1024 * 1024;
  d.block_size = 16;
  d.max_model_len = 32768;          // 2048 blocks = 16 GiB
  auto b = plan_kv_cache(d);
  REQUIRE_FALSE(b.is_ok());
  CHECK(b.status().message().find("raise --gpu-memory-utilization or lower --max-model-len") != std::string::npos);
  CHECK(b.status().message().find("--max-model-len 32768") != std::string::npos);
}

TEST_CASE("bad figures are errors, not blocks") {
  KvCacheDemand d;
  d.total_bytes = 8 * kGiB;
  d.free_after_profile = 4 * kGiB;
  d.block_bytes = 1024;
  d.max_model_len = 16;
  d.utilization = 1.5;
  CHECK_FALSE(plan_kv_cache(d).is_ok());
  d.utilization = 0.5;
  d.free_after_profile = 9 * kGiB;  // more free than total
  CHECK_FALSE(plan_kv_cache(d).is_ok());
}

}  // namespace
}  // namespace llmctl::engine
