#include "netcheck/probes/gpu_probe.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace llmctl::netcheck {
namespace {

CheckResult make(const ProbeOptions& o, std::string id, CheckStatus status, std::string message,
                 std::string fix = "") {
  return CheckResult{o.node_name, std::move(id), status, std::move(message), std::move(fix)};
}

}  // namespace

std::vector<CheckResult> probe_gpu(const HostView& host, const ProbeOptions& options) {
  std::vector<CheckResult> out;
  GpuInventory inv = host.gpus();
  if (!inv.driver_found || inv.devices.empty()) {
    std::string why = !inv.driver_found ? "no NVIDIA driver (libcuda.so.1) found" : "the driver reports no GPUs";
    if (!inv.error.empty()) why += ": " + inv.error;
    out.push_back(make(options, "gpu.devices", CheckStatus::kWarn,
                       fmt::format("{}; this node can only run the CPU backend", why),
                       "on a GPU node: install the NVIDIA driver and check `nvidia-smi`"));
  } else {
    std::vector<std::string> names;
    for (const auto& d : inv.devices) {
      names.push_back(fmt::format("{}: {} {:.0f} GiB", d.index, d.name,
                                  static_cast<double>(d.total_memory_bytes) / (1ull << 30)));
    }
    out.push_back(make(options, "gpu.devices", CheckStatus::kOk,
                       fmt::format("{} GPU(s): {}", inv.devices.size(), fmt::join(names, "; "))));
  }
  std::string nccl = host.nccl_version();
  if (inv.driver_found) {
    out.push_back(make(options, "gpu.versions", CheckStatus::kOk,
                       fmt::format("driver {}, CUDA {}, NCCL {}", inv.driver_version.empty() ? "?" : inv.driver_version,
                                   format_cuda_version(inv.cuda_driver_version), nccl.empty() ? "not found" : nccl)));
  } else {
    out.push_back(make(options, "gpu.versions", CheckStatus::kSkip,
                       fmt::format("no driver; NCCL {}", nccl.empty() ? "not found" : nccl)));
  }
  auto ib = host.list_dir("/sys/class/infiniband");
  if (ib.empty()) {
    out.push_back(make(options, "gpu.infiniband", CheckStatus::kOk,
                       "no InfiniBand devices; NCCL uses TCP sockets (set NCCL_IB_DISABLE=1 to skip its IB probing)"));
  } else {
    out.push_back(make(options, "gpu.infiniband", CheckStatus::kOk,
                       fmt::format("InfiniBand devices: {}", fmt::join(ib, ", "))));
  }
  return out;
}

}  // namespace llmctl::netcheck
