// What GPUs this host has, found at run time by dlopen() of the NVIDIA driver
// libraries (libcuda.so.1, libnvidia-ml.so.1). Never a link dependency: the
// CPU build and GPU-less hosts run the same code and simply find no GPUs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace llmctl {

struct GpuDevice {
  int index = 0;
  std::string name;             // "NVIDIA H100 80GB HBM3"
  std::string uuid;             // "GPU-..." when NVML is present
  std::uint64_t total_memory_bytes = 0;
  std::uint64_t free_memory_bytes = 0;   // 0 when NVML is absent
  int compute_capability_major = 0;
  int compute_capability_minor = 0;
};

struct GpuInventory {
  bool driver_found = false;    // libcuda.so.1 could be loaded
  std::string driver_version;   // "580.65.06" from NVML, empty when unknown
  int cuda_driver_version = 0;  // cuDriverGetVersion(), e.g. 13000
  std::string error;            // why no GPUs were found, if the driver was found
  std::vector<GpuDevice> devices;
};

// Probes the driver once per call; cheap (tens of ms) but not free.
GpuInventory probe_gpus();

// "13.0" from 13000.
std::string format_cuda_version(int version);

}  // namespace llmctl
