// ResourceSampler: this host's CPU, memory and GPU use for heartbeats: CPU
// and memory from /proc (two small file reads), GPUs through NVML
// (gpu_sampler.h) when the host has any.
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

#include "runtime/control/gpu_sampler.h"

namespace llmctl::control {

struct HostTotals {
  int num_cpus = 0;
  std::uint64_t memory_bytes = 0;
};
HostTotals probe_host_totals();

class ResourceSampler {
 public:
  // {"cpu_percent": 12.5, "memory_used_bytes": ..., "memory_total_bytes": ...,
  //  "gpus": [{"index", "memory_used_bytes", "memory_total_bytes", "utilization_percent"}]};
  // cpu_percent covers the time since the previous sample (0 on the first);
  // "gpus" is absent on hosts without NVML-visible GPUs.
  nlohmann::json sample();

 private:
  std::uint64_t last_busy_ = 0;
  std::uint64_t last_total_ = 0;
  GpuSampler gpus_;
};

}  // namespace llmctl::control
