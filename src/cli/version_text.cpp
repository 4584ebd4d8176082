#include "cli/version_text.h"

#include <sys/utsname.h>

#include <algorithm>

#include <fmt/format.h>

#include "common/build_info.h"
#include "common/gpu_inventory.h"
#include "kernels/backend_info.h"

namespace llmctl::cli {
namespace {

std::string or_dash(const std::string& s) { return s.empty() ? "-" : s; }

std::string machine() {
  utsname u{};
  if (uname(&u) != 0) return "unknown";
  return fmt::format("{} {} {}", u.sysname, u.release, u.machine);
}

}  // namespace

nlohmann::json version_json(bool with_gpus) {
  const BuildInfo& b = build_info();
  BackendInfo backend = backend_info();
  nlohmann::json j;
  j["version"] = std::string(b.version);
  j["git_revision"] = std::string(b.git_revision);
  j["build_type"] = std::string(b.build_type);
  j["platform"] = machine();
  j["cuda_backend"] = backend.cuda;
  j["compiled"] = {{"cuda_runtime", backend.cuda_runtime},
                   {"cublas", backend.cublas},
                   {"nccl", backend.nccl_compiled}};
  j["nccl_runtime"] = backend.nccl_runtime;
  if (with_gpus) {
    GpuInventory inv = probe_gpus();
    nlohmann::json gpus = nlohmann::json::array();
    for (const auto& d : inv.devices) {
      gpus.push_back({{"index", d.index},
                      {"name", d.name},
                      {"uuid", d.uuid},
                      {"total_memory_bytes", d.total_memory_bytes},
                      {"compute_capability", fmt::format("{}.{}", d.compute_capability_major,
                                                         d.compute_capability_minor)}});
    }
    j["driver"] = {{"found", inv.driver_found},
                   {"version", inv.driver_version},
                   {"cuda_version", format_cuda_version(inv.cuda_driver_version)},
                   {"error", inv.error}};
    j["gpus"] = gpus;
  }
  return j;
}

std::string version_text(bool probe_gpus) {
  nlohmann::json j = version_json(probe_gpus);
  std::string out = fmt::format("llmctl {} ({}, {})\n", j["version"].get<std::string>(),
                                j["git_revision"].get<std::string>(), j["build_type"].get<std::string>());
  out += fmt::format("platform:     {}\n", j["platform"].get<std::string>());
  if (j["cuda_backend"].get<bool>()) {
    out += fmt::format("cuda backend: yes (cudart {} static, cuBLAS {}, NCCL {} compiled / {} loaded)\n",
                       j["compiled"]["cuda_runtime"].get<std::string>(), j["compiled"]["cublas"].get<std::string>(),
                       j["compiled"]["nccl"].get<std::string>(), or_dash(j["nccl_runtime"].get<std::string>()));
  } else {
    out += "cuda backend: no (CPU-only build)\n";
  }
  if (probe_gpus) {
    const auto& d = j["driver"];
    if (!d["found"].get<bool>()) {
      out += "driver:       none found (libcuda.so.1 not loadable)\n";
    } else {
      out += fmt::format("driver:       {} (CUDA {})\n", or_dash(d["version"].get<std::string>()),
                         or_dash(d["cuda_version"].get<std::string>()));
      if (!d["error"].get<std::string>().empty()) out += fmt::format("              {}\n", d["error"].get<std::string>());
    }
    const auto& gpus = j["gpus"];
    out += fmt::format("gpus:         {}\n", gpus.size());
    for (const auto& g : gpus) {
      out += fmt::format("  [{}] {}  {:.1f} GiB  sm_{}\n", g["index"].get<int>(), g["name"].get<std::string>(),
                         static_cast<double>(g["total_memory_bytes"].get<std::uint64_t>()) / (1ull << 30),
                         [&] {
                           std::string cc = g["compute_capability"].get<std::string>();
                           cc.erase(std::remove(cc.begin(), cc.end(), '.'), cc.end());
                           return cc;
                         }());
    }
  }
  return out;
}

}  // namespace llmctl::cli
