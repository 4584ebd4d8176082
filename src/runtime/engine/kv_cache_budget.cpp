#include "runtime/engine/kv_cache_budget.h"

#include <fmt/format.h>

namespace llmctl::engine {
namespace {

double gib(double bytes) { return bytes / (1024.0 * 1024.0 * 1024.0); }

}  // namespace

int64_t kv_block_bytes(int64_t num_layers, int32_t block_size, int64_t num_kv_heads, int64_t head_dim,
                       kernels::KvDtype dtype) {
  return 2 * num_layers * static_cast<int64_t>(block_size) * num_kv_heads * head_dim *
         static_cast<int64_t>(kernels::kv_dtype_size_bytes(dtype));
}

Result<KvCacheBudget> plan_kv_cache(const KvCacheDemand& d) {
  if (!(d.utilization > 0.0 && d.utilization <= 1.0)) {
    return Status::invalid_argument(fmt::format("--gpu-memory-utilization {} is not in (0, 1]", d.utilization));
  }
  if (d.total_bytes == 0 || d.free_after_profile > d.total_bytes || d.block_bytes <= 0 || d.block_size <= 0 ||
      d.max_model_len <= 0) {
    return Status::invalid_argument("the KV cache cannot be sized: the device reported no usable memory figures");
  }
  const double allowed = static_cast<double>(d.total_bytes) * d.utilization;
  const double used = static_cast<double>(d.total_bytes - d.free_after_profile);
  const double room = allowed - used;
  const int64_t blocks_per_request = (d.max_model_len + d.block_size - 1) / d.block_size;
  const double need = static_cast<double>(blocks_per_request) * static_cast<double>(d.block_bytes);
  if (room < need) {
    return Status::invalid_argument(fmt::format(
        "no room for the KV cache: --gpu-memory-utilization {} allows {:.2f} GiB of this device's {:.2f} GiB, "
        "weights, activations and other processes already use {:.2f} GiB, and one request of --max-model-len {} "
        "needs {:.2f} GiB of KV cache; raise --gpu-memory-utilization or lower --max-model-len",
        d.utilization, gib(allowed), gib(static_cast<double>(d.total_bytes)), gib(used), d.max_model_len, gib(need)));
  }
  KvCacheBudget b;
  const double blocks = room / static_cast<double>(d.block_bytes);
  b.num_blocks = blocks > 2147483647.0 ? 2147483647 : static_cast<int32_t>(blocks);
  b.bytes = static_cast<int64_t>(b.num_blocks) * d.block_bytes;
  b.tokens = static_cast<int64_t>(b.num_blocks) * d.block_size;
  b.max_concurrency = static_cast<double>(b.num_blocks) / static_cast<double>(blocks_per_request);
  b.summary = fmt::format(
      "KV cache: {} blocks of {} tokens = {} tokens in {:.2f} GiB of {} ({:.0f}% of {:.2f} GiB allowed, {:.2f} GiB "
      "already used); maximum concurrency for {}-token requests: {:.2f}x",
      b.num_blocks, d.block_size, b.tokens, gib(static_cast<double>(b.bytes)),
      d.dtype == kernels::KvDtype::kBF16 ? "bf16" : "fp32", d.utilization * 100.0, gib(allowed), gib(used),
      d.max_model_len, b.max_concurrency);
  return b;
}

}  // namespace llmctl::engine
