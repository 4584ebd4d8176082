#include "common/gpu_inventory.h"

#include <dlfcn.h>

#include <cstdio>

namespace llmctl {
namespace {

// Minimal driver API signatures (from the CUDA driver ABI, stable since CUDA 4).
using CUresult = int;
using CUdevice = int;
using cuInit_t = CUresult (*)(unsigned int);
using cuDriverGetVersion_t = CUresult (*)(int*);
using cuDeviceGetCount_t = CUresult (*)(int*);
using cuDeviceGet_t = CUresult (*)(CUdevice*, int);
using cuDeviceGetName_t = CUresult (*)(char*, int, CUdevice);
using cuDeviceTotalMem_t = CUresult (*)(std::size_t*, CUdevice);
using cuDeviceGetAttribute_t = CUresult (*)(int*, int, CUdevice);
constexpr int kAttrComputeCapabilityMajor = 75;
constexpr int kAttrComputeCapabilityMinor = 76;

// NVML
using nvmlReturn_t = int;
using nvmlDevice_t = void*;
struct NvmlMemory {
  unsigned long long total, free, used;
};
using nvmlInit_t = nvmlReturn_t (*)();
using nvmlShutdown_t = nvmlReturn_t (*)();
using nvmlSystemGetDriverVersion_t = nvmlReturn_t (*)(char*, unsigned int);
using nvmlDeviceGetHandleByIndex_t = nvmlReturn_t (*)(unsigned int, nvmlDevice_t*);
using nvmlDeviceGetMemoryInfo_t = nvmlReturn_t (*)(nvmlDevice_t, NvmlMemory*);
using nvmlDeviceGetUUID_t = nvmlReturn_t (*)(nvmlDevice_t, char*, unsigned int);

template <typename F>
F sym(void* lib, const char* name) {
  return reinterpret_cast<F>(dlsym(lib, name));
}

void probe_nvml(GpuInventory& inv) {
  void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return;
  auto init = sym<nvmlInit_t>(lib, "nvmlInit_v2");
  auto shutdown = sym<nvmlShutdown_t>(lib, "nvmlShutdown");
  auto driver_version = sym<nvmlSystemGetDriverVersion_t>(lib, "nvmlSystemGetDriverVersion");
  auto get_handle = sym<nvmlDeviceGetHandleByIndex_t>(lib, "nvmlDeviceGetHandleByIndex_v2");
  auto get_memory = sym<nvmlDeviceGetMemoryInfo_t>(lib, "nvmlDeviceGetMemoryInfo");
  auto get_uuid = sym<nvmlDeviceGetUUID_t>(lib, "nvmlDeviceGetUUID");
  if (init && init() == 0) {
    char buf[96] = {};
    if (driver_version && driver_version(buf, sizeof(buf)) == 0) inv.driver_version = buf;
    for (GpuDevice& d : inv.devices) {
      nvmlDevice_t handle = nullptr;
      if (!get_handle || get_handle(static_cast<unsigned>(d.index), &handle) != 0) continue;
      NvmlMemory mem{};
      if (get_memory && get_memory(handle, &mem) == 0) d.free_memory_bytes = mem.free;
      char uuid[96] = {};
      if (get_uuid && get_uuid(handle, uuid, sizeof(uuid)) == 0) d.uuid = uuid;
    }
    if (shutdown) shutdown();
  }
  dlclose(lib);
}

}  // namespace

std::string format_cuda_version(int version) {
  if (version <= 0) return "";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%d.%d", version / 1000, (version % 1000) / 10);
  return buf;
}

GpuInventory probe_gpus() {
  GpuInventory inv;
  // The handle stays open: unloading libcuda after cuInit is unsafe.
  static void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return inv;
  inv.driver_found = true;
  auto init = sym<cuInit_t>(lib, "cuInit");
  auto driver_version = sym<cuDriverGetVersion_t>(lib, "cuDriverGetVersion");
  auto get_count = sym<cuDeviceGetCount_t>(lib, "cuDeviceGetCount");
  auto get_device = sym<cuDeviceGet_t>(lib, "cuDeviceGet");
  auto get_name = sym<cuDeviceGetName_t>(lib, "cuDeviceGetName");
  auto total_mem = sym<cuDeviceTotalMem_t>(lib, "cuDeviceTotalMem_v2");
  auto get_attr = sym<cuDeviceGetAttribute_t>(lib, "cuDeviceGetAttribute");
  if (!init || !get_count || !get_device) {
    inv.error = "libcuda.so.1 lacks the expected driver API symbols";
    return inv;
  }
  if (driver_version) driver_version(&inv.cuda_driver_version);
  if (CUresult r = init(0); r != 0) {
    inv.error = "cuInit failed with CUresult " + std::to_string(r) +
                (r == 100 ? " (no CUDA-capable device)" : "");
    return inv;
  }
  int count = 0;
  if (get_count(&count) != 0) {
    inv.error = "cuDeviceGetCount failed";
    return inv;
  }
  for (int i = 0; i < count; ++i) {
    CUdevice dev = 0;
    if (get_device(&dev, i) != 0) continue;
    GpuDevice d;
    d.index = i;
    char name[256] = {};
    if (get_name && get_name(name, sizeof(name), dev) == 0) d.name = name;
    std::size_t bytes = 0;
    if (total_mem && total_mem(&bytes, dev) == 0) d.total_memory_bytes = bytes;
    if (get_attr) {
      get_attr(&d.compute_capability_major, kAttrComputeCapabilityMajor, dev);
      get_attr(&d.compute_capability_minor, kAttrComputeCapabilityMinor, dev);
    }
    inv.devices.push_back(std::move(d));
  }
  probe_nvml(inv);
  return inv;
}

}  // namespace llmctl
