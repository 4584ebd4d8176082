#include "runtime/engine/scheduler_limits.h"

#include <algorithm>

#include <fmt/format.h>

namespace llmctl::engine {

namespace {
// 70 GiB rather than 80: an H100 reports about 79.6 GiB, and vLLM draws the
// line at the same place.
constexpr int kLargeGpuGiB = 70;
constexpr uint64_t kLargeGpuBytes = uint64_t{kLargeGpuGiB} << 30;
constexpr SchedulerLimits kLargeGpu{1024, 8192};
constexpr SchedulerLimits kSmallGpu{256, 2048};
constexpr SchedulerLimits kCpu{64, 2048};
}  // namespace

SchedulerLimits default_scheduler_limits(uint64_t device_total_bytes, int32_t max_model_len) {
  SchedulerLimits l = device_total_bytes == 0 ? kCpu : device_total_bytes >= kLargeGpuBytes ? kLargeGpu : kSmallGpu;
  l.max_num_batched_tokens = std::max(l.max_num_batched_tokens, max_model_len);
  return l;
}

namespace {
// One limit's defaults in the words of --help.
std::string by_device(int32_t SchedulerLimits::*limit) {
  return fmt::format("by device: {} on a GPU of {} GiB or more, {} on a smaller GPU, {} on the CPU", kLargeGpu.*limit,
                     kLargeGpuGiB, kSmallGpu.*limit, kCpu.*limit);
}
}  // namespace

std::string default_max_num_seqs_help() { return by_device(&SchedulerLimits::max_num_seqs); }

std::string default_max_num_batched_tokens_help() {
  return by_device(&SchedulerLimits::max_num_batched_tokens) + "; at least max-model-len";
}

std::string resolve_scheduler_limits(SchedulerConfig& config, uint64_t device_total_bytes) {
  if (config.max_num_seqs > 0 && config.max_num_batched_tokens > 0) return "";
  const SchedulerLimits d = default_scheduler_limits(device_total_bytes, config.max_model_len);
  if (config.max_num_seqs <= 0) config.max_num_seqs = d.max_num_seqs;
  if (config.max_num_batched_tokens <= 0) config.max_num_batched_tokens = d.max_num_batched_tokens;
  const std::string where =
      device_total_bytes == 0
          ? std::string("the CPU")
          : fmt::format("a GPU of {:.1f} GiB", static_cast<double>(device_total_bytes) / (uint64_t{1} << 30));
  return fmt::format(
      "scheduler: up to {} sequences and {} tokens a step (defaults for {}; --max-num-seqs and "
      "--max-num-batched-tokens set them)",
      config.max_num_seqs, config.max_num_batched_tokens, where);
}

}  // namespace llmctl::engine
