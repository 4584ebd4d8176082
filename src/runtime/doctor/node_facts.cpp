#include "runtime/doctor/node_facts.h"

#include <chrono>

#include "common/build_info.h"
#include "netcheck/interface_selector.h"

namespace llmctl::doctor {

nlohmann::json NodeFacts::to_json() const {
  return {{"hostname", hostname},         {"address", address},           {"llmctl_version", llmctl_version},
          {"driver_version", driver_version}, {"cuda_version", cuda_version}, {"nccl_version", nccl_version},
          {"time_unix_ms", time_unix_ms}, {"listening_ports", listening_ports}};
}

NodeFacts NodeFacts::from_json(const nlohmann::json& j) {
  NodeFacts f;
  auto str = [&](const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  f.hostname = str("hostname");
  f.address = str("address");
  f.llmctl_version = str("llmctl_version");
  f.driver_version = str("driver_version");
  f.cuda_version = str("cuda_version");
  f.nccl_version = str("nccl_version");
  if (auto it = j.find("time_unix_ms"); it != j.end() && it->is_number_integer()) f.time_unix_ms = it->get<std::int64_t>();
  if (auto it = j.find("listening_ports"); it != j.end() && it->is_array()) {
    for (const auto& p : *it) {
      if (p.is_number_integer()) f.listening_ports.push_back(p.get<int>());
    }
  }
  return f;
}

std::int64_t unix_time_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string advertised_address(const netcheck::HostView& host, const std::string& node_ip) {
  if (!node_ip.empty()) return node_ip;
  auto interfaces = host.interfaces();
  auto is_local = [&](const std::string& a) {
    for (const auto& iface : interfaces) {
      if (!iface.up || iface.loopback) continue;
      for (const auto& ia : iface.addresses) {
        if (ia.address == a) return true;
      }
    }
    return false;
  };
  auto resolved = host.resolve(host.hostname());
  if (resolved.is_ok()) {
    for (const auto& a : *resolved) {
      if (a.find(':') == std::string::npos && is_local(a)) return a;
    }
  }
  if (const auto* iface = netcheck::nccl_default_interface(interfaces); iface != nullptr && !iface->loopback) {
    for (const auto& ia : iface->addresses) {
      if (!ia.ipv6) return ia.address;
    }
  }
  return "";
}

NodeFacts collect_node_facts(const netcheck::HostView& host, const std::string& node_ip,
                             const std::string& version_override) {
  NodeFacts f;
  f.hostname = host.hostname();
  f.address = advertised_address(host, node_ip);
  f.llmctl_version = version_override.empty() ? std::string(build_info().version) : version_override;
  GpuInventory gpus = host.gpus();
  if (gpus.driver_found) {
    f.driver_version = gpus.driver_version;
    f.cuda_version = format_cuda_version(gpus.cuda_driver_version);
  }
  f.nccl_version = host.nccl_version();
  f.time_unix_ms = unix_time_ms();
  return f;
}

}  // namespace llmctl::doctor
