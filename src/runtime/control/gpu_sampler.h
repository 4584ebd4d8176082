// GpuSampler: per-GPU memory use and utilisation for heartbeats, read through
// NVML (libnvidia-ml.so.1) opened with dlopen() once — never a link
// dependency, so GPU-less hosts and the CPU build report no GPUs.
// Unlike probe_gpus() (common/gpu_inventory.h, which initialises the CUDA
// driver, tens of ms), one sample is a few NVML queries per device.
//
// Thread safety: none; the agent samples from its io_context thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace llmctl::control {

struct GpuUsage {
  int index = 0;
  std::uint64_t memory_used_bytes = 0;
  std::uint64_t memory_total_bytes = 0;
  int utilization_percent = 0;  // over NVML's last sample period (1/6 s to 1 s)
};

class GpuSampler {
 public:
  GpuSampler();  // loads NVML; no GPUs when it is absent or fails to initialise
  ~GpuSampler();
  GpuSampler(const GpuSampler&) = delete;
  GpuSampler& operator=(const GpuSampler&) = delete;

  bool available() const { return num_devices_ > 0; }
  std::vector<GpuUsage> sample() const;

 private:
  struct Api;
  void* lib_ = nullptr;
  Api* api_ = nullptr;
  unsigned num_devices_ = 0;
};

// [{"index", "memory_used_bytes", "memory_total_bytes", "utilization_percent"}, ...]
nlohmann::json gpu_usage_to_json(const std::vector<GpuUsage>& gpus);

}  // namespace llmctl::control
