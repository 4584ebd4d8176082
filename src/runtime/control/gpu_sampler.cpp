#include "runtime/control/gpu_sampler.h"

#include <dlfcn.h>

namespace llmctl::control {
namespace {

// The few NVML types and entry points used, as nvml.h declares them.
using nvmlReturn_t = int;
using nvmlDevice_t = void*;
struct NvmlMemory {
  unsigned long long total, free, used;
};
struct NvmlUtilization {
  unsigned int gpu, memory;
};
constexpr nvmlReturn_t kNvmlSuccess = 0;

template <typename F>
F sym(void* lib, const char* name) {
  return reinterpret_cast<F>(::dlsym(lib, name));
}

}  // namespace

struct GpuSampler::Api {
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*shutdown)() = nullptr;
  nvmlReturn_t (*get_count)(unsigned int*) = nullptr;
  nvmlReturn_t (*get_handle)(unsigned int, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*get_memory)(nvmlDevice_t, NvmlMemory*) = nullptr;
  nvmlReturn_t (*get_utilization)(nvmlDevice_t, NvmlUtilization*) = nullptr;
};

GpuSampler::GpuSampler() {
  lib_ = ::dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib_) return;
  api_ = new Api;
  api_->init = sym<decltype(api_->init)>(lib_, "nvmlInit_v2");
  api_->shutdown = sym<decltype(api_->shutdown)>(lib_, "nvmlShutdown");
  api_->get_count = sym<decltype(api_->get_count)>(lib_, "nvmlDeviceGetCount_v2");
  api_->get_handle = sym<decltype(api_->get_handle)>(lib_, "nvmlDeviceGetHandleByIndex_v2");
  api_->get_memory = sym<decltype(api_->get_memory)>(lib_, "nvmlDeviceGetMemoryInfo");
  api_->get_utilization = sym<decltype(api_->get_utilization)>(lib_, "nvmlDeviceGetUtilizationRates");
  if (!api_->init || !api_->get_count || !api_->get_handle || !api_->get_memory || api_->init() != kNvmlSuccess) {
    delete api_;
    api_ = nullptr;
    ::dlclose(lib_);
    lib_ = nullptr;
    return;
  }
  unsigned int n = 0;
  if (api_->get_count(&n) == kNvmlSuccess) num_devices_ = n;
}

GpuSampler::~GpuSampler() {
  if (api_ && api_->shutdown) api_->shutdown();
  delete api_;
  if (lib_) ::dlclose(lib_);
}

std::vector<GpuUsage> GpuSampler::sample() const {
  std::vector<GpuUsage> out;
  for (unsigned int i = 0; i < num_devices_; ++i) {
    nvmlDevice_t handle = nullptr;
    if (api_->get_handle(i, &handle) != kNvmlSuccess) continue;
    GpuUsage u;
    u.index = static_cast<int>(i);
    NvmlMemory mem{};
    if (api_->get_memory(handle, &mem) == kNvmlSuccess) {
      u.memory_used_bytes = mem.used;
      u.memory_total_bytes = mem.total;
    }
    NvmlUtilization util{};
    if (api_->get_utilization && api_->get_utilization(handle, &util) == kNvmlSuccess) {
      u.utilization_percent = static_cast<int>(util.gpu);
    }
    out.push_back(u);
  }
  return out;
}

nlohmann::json gpu_usage_to_json(const std::vector<GpuUsage>& gpus) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& g : gpus) {
    out.push_back({{"index", g.index},
                   {"memory_used_bytes", g.memory_used_bytes},
                   {"memory_total_bytes", g.memory_total_bytes},
                   {"utilization_percent", g.utilization_percent}});
  }
  return out;
}

}  // namespace llmctl::control
