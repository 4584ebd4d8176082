#include "netcheck/probes/interfaces_probe.h"

#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "netcheck/interface_selector.h"

namespace llmctl::netcheck {
namespace {

CheckResult make(const ProbeOptions& o, std::string id, CheckStatus status, std::string message,
                 std::string fix = "") {
  return CheckResult{o.node_name, std::move(id), status, std::move(message), std::move(fix)};
}

std::string describe(const NetInterface& iface) {
  std::vector<std::string> addrs;
  for (const auto& a : iface.addresses) addrs.push_back(fmt::format("{}/{}", a.address, a.prefix_length));
  return fmt::format("{} {} mtu {}", iface.name, fmt::join(addrs, " "), iface.mtu);
}

std::string first_ipv4(const NetInterface& iface) {
  for (const auto& a : iface.addresses) {
    if (!a.ipv6) return a.address;
  }
  return "";
}

// The environment wins over cluster.toml [env], as for the processes llmctl starts.
std::optional<std::string> setting(const HostView& host, const ProbeOptions& o, const std::string& name) {
  if (auto v = host.env(name)) return v;
  if (auto it = o.env.find(name); it != o.env.end()) return it->second;
  return std::nullopt;
}

std::vector<std::string> usable_names(const std::vector<NetInterface>& interfaces) {
  std::vector<std::string> out;
  for (const auto& iface : interfaces) {
    if (iface.up && !iface.loopback && iface.has_ipv4()) out.push_back(iface.name);
  }
  return out;
}

void check_ifname(const HostView& host, const ProbeOptions& o, const std::vector<NetInterface>& interfaces,
                  const std::string& var, const std::string& id, bool nccl_syntax, std::vector<CheckResult>* out) {
  auto value = setting(host, o, var);
  auto names = usable_names(interfaces);
  const NetInterface* nccl_default = nccl_default_interface(interfaces);
  std::string suggestion = nccl_default != nullptr && !nccl_default->loopback ? nccl_default->name
                           : names.empty()                                  ? "<interface>"
                                                                            : names.front();
  if (!value) {
    out->push_back(make(o, id, CheckStatus::kOk, fmt::format("{} is not set; the default choice applies", var)));
    return;
  }
  auto selector = nccl_syntax ? InterfaceSelector::parse_nccl(*value) : InterfaceSelector::parse_exact_list(*value);
  auto chosen = selector.select(interfaces);
  if (chosen.empty()) {
    // Say why: missing entirely, or present but down / without an address.
    std::vector<std::string> present;
    for (const auto& iface : interfaces) {
      if (selector.matches(iface.name)) present.push_back(fmt::format("{} ({}{})", iface.name, iface.up ? "up" : "down",
                                                                      iface.has_ipv4() ? "" : ", no IPv4 address"));
    }
    std::string why = present.empty() ? "no interface of this node matches it"
                                      : fmt::format("matching interfaces are unusable: {}", fmt::join(present, ", "));
    out->push_back(make(o, id, CheckStatus::kFail,
                        fmt::format("{}={}: {}; up interfaces: {}", var, *value, why,
                                    names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "))),
                        fmt::format("export {}={} (or set it under [env] in cluster.toml)", var, suggestion)));
    return;
  }
  std::vector<std::string> picked;
  for (const auto* iface : chosen) picked.push_back(fmt::format("{} ({})", iface->name, first_ipv4(*iface)));
  out->push_back(make(o, id, CheckStatus::kOk, fmt::format("{}={} selects {}", var, *value, fmt::join(picked, ", "))));
}

}  // namespace

std::vector<CheckResult> probe_interfaces(const HostView& host, const ProbeOptions& options) {
  std::vector<CheckResult> out;
  auto interfaces = host.interfaces();
  std::vector<std::string> up;
  for (const auto& iface : interfaces) {
    if (iface.up && !iface.loopback && !iface.addresses.empty()) up.push_back(describe(iface));
  }
  if (up.empty()) {
    out.push_back(make(options, "interfaces.up", CheckStatus::kFail,
                       "no up, non-loopback interface with an address: other nodes cannot reach this one",
                       "ip link set <nic> up && ip addr add <address>/<prefix> dev <nic>"));
  } else {
    out.push_back(make(options, "interfaces.up", CheckStatus::kOk, fmt::format("{}", fmt::join(up, "; "))));
  }

  check_ifname(host, options, interfaces, "NCCL_SOCKET_IFNAME", "interfaces.nccl_ifname", true, &out);
  check_ifname(host, options, interfaces, "GLOO_SOCKET_IFNAME", "interfaces.gloo_ifname", false, &out);

  const NetInterface* nccl_default = nccl_default_interface(interfaces);
  if (nccl_default == nullptr) {
    out.push_back(make(options, "interfaces.nccl_default", CheckStatus::kWarn, "NCCL would find no usable interface"));
  } else if (nccl_default->loopback || nccl_default->name.rfind("docker", 0) == 0) {
    out.push_back(make(options, "interfaces.nccl_default", CheckStatus::kWarn,
                       fmt::format("without NCCL_SOCKET_IFNAME, NCCL would use {}, which other nodes cannot reach",
                                   describe(*nccl_default)),
                       "set NCCL_SOCKET_IFNAME=<nic> under [env] in cluster.toml"));
  } else {
    out.push_back(make(options, "interfaces.nccl_default", CheckStatus::kOk,
                       fmt::format("without NCCL_SOCKET_IFNAME, NCCL would use {}", describe(*nccl_default))));
  }

  // Which interface the kernel routes each peer through, against what we advertise.
  auto nccl_value = setting(host, options, "NCCL_SOCKET_IFNAME");
  for (const auto& peer : options.peers) {
    std::string id = "interfaces.route";
    auto addrs = host.resolve(peer);
    if (!addrs.is_ok() || addrs->empty()) {
      out.push_back(make(options, id, CheckStatus::kFail, fmt::format("peer {} does not resolve here", peer),
                         fmt::format("echo '<address of {}> {}' >> /etc/hosts", peer, peer)));
      continue;
    }
    const std::string& peer_addr = addrs->front();
    auto route = host.route_to(peer_addr);
    if (!route.is_ok()) {
      out.push_back(make(options, id, CheckStatus::kFail, fmt::format("no route to peer {} ({}): {}", peer, peer_addr,
                                                                       route.status().message()),
                         fmt::format("ip route add {}/32 dev <nic>", peer_addr)));
      continue;
    }
    std::string via = fmt::format("traffic to {} ({}) leaves {} from {}", peer, peer_addr,
                                  route->interface_name.empty() ? "?" : route->interface_name, route->source_address);
    if (is_loopback_address(peer_addr)) {
      out.push_back(make(options, id, CheckStatus::kFail, fmt::format("peer {} resolves to loopback {}", peer, peer_addr),
                         fmt::format("map {} to its real address in /etc/hosts", peer)));
    } else if (!options.node_ip.empty() && route->source_address != options.node_ip) {
      out.push_back(make(options, id, CheckStatus::kWarn,
                         fmt::format("{}, but this node advertises {}", via, options.node_ip),
                         fmt::format("set node_ip = \"{}\" for this node, or route {} through the advertised NIC",
                                     route->source_address, peer_addr)));
    } else if (nccl_value && !route->interface_name.empty() &&
               !InterfaceSelector::parse_nccl(*nccl_value).matches(route->interface_name)) {
      out.push_back(make(options, id, CheckStatus::kWarn,
                         fmt::format("{}, which NCCL_SOCKET_IFNAME={} does not select", via, *nccl_value),
                         fmt::format("NCCL_SOCKET_IFNAME = \"{}\" under [env]", route->interface_name)));
    } else {
      out.push_back(make(options, id, CheckStatus::kOk, via));
    }
  }
  return out;
}

}  // namespace llmctl::netcheck
