// ResourceSampler: this host's CPU and memory use for heartbeats, read from
// /proc (cheap: two small file reads per sample).
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

namespace llmctl::control {

struct HostTotals {
  int num_cpus = 0;
  std::uint64_t memory_bytes = 0;
};
HostTotals probe_host_totals();

class ResourceSampler {
 public:
  // {"cpu_percent": 12.5, "memory_used_bytes": ..., "memory_total_bytes": ...};
  // cpu_percent covers the time since the previous sample (0 on the first).
  nlohmann::json sample();

 private:
  std::uint64_t last_busy_ = 0;
  std::uint64_t last_total_ = 0;
};

}  // namespace llmctl::control
