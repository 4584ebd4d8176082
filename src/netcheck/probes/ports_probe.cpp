#include "netcheck/probes/ports_probe.h"

#include <sstream>

#include <fmt/format.h>

#include "netcheck/socket_owner.h"

namespace llmctl::netcheck {
namespace {

struct NamedPort {
  const char* name;
  const char* config_key;
  int port;
};

CheckResult make(const ProbeOptions& o, std::string id, CheckStatus status, std::string message,
                 std::string fix = "") {
  return CheckResult{o.node_name, std::move(id), status, std::move(message), std::move(fix)};
}

}  // namespace

std::vector<CheckResult> probe_ports(const HostView& host, const ProbeOptions& options) {
  std::vector<CheckResult> out;
  SocketOwners owners(host);
  const PortsConfig& p = options.ports;
  const NamedPort singles[] = {
      {"head", "head", p.head}, {"dashboard", "dashboard", p.dashboard},
      {"client", "client", p.client}, {"api", "api", p.api}};
  for (const auto& np : singles) {
    std::string id = fmt::format("ports.{}", np.name);
    Status s = host.try_bind_tcp(options.bind_address, np.port);
    if (s.is_ok()) {
      out.push_back(make(options, id, CheckStatus::kOk, fmt::format("{} port {} is free on {}", np.name, np.port, options.bind_address)));
    } else if (s.code() == StatusCode::kAlreadyExists) {
      std::string who = describe_owners(owners.owners_of(np.port));
      out.push_back(make(options, id, CheckStatus::kFail,
                         fmt::format("{} port {} is taken by {}", np.name, np.port, who),
                         fmt::format("stop it (`ss -ltnp 'sport = :{}'` shows it) or set [ports] {} = <free port> in cluster.toml",
                                     np.port, np.config_key)));
    } else {
      out.push_back(make(options, id, CheckStatus::kFail,
                         fmt::format("{} port {} cannot be bound on {}: {}", np.name, np.port, options.bind_address, s.message()),
                         fmt::format("set [ports] {} = <port> in cluster.toml, or run as a user allowed to bind it", np.config_key)));
    }
  }

  // The range: bind each port once (fast), and name owners of the first few taken.
  int taken = 0;
  std::vector<int> taken_ports;
  std::string other_error;
  for (int port = p.node_range.first; port <= p.node_range.last; ++port) {
    Status s = host.try_bind_tcp(options.bind_address, port);
    if (s.is_ok()) continue;
    ++taken;
    if (taken_ports.size() < 5) taken_ports.push_back(port);
    if (s.code() != StatusCode::kAlreadyExists && other_error.empty()) other_error = s.message();
  }
  std::string range = fmt::format("{}-{}", p.node_range.first, p.node_range.last);
  int free_ports = p.node_range.size() - taken;
  if (taken == 0) {
    out.push_back(make(options, "ports.node_range", CheckStatus::kOk, fmt::format("all {} ports of {} are free", p.node_range.size(), range)));
  } else {
    std::string detail;
    for (int port : taken_ports) {
      if (!detail.empty()) detail += ", ";
      detail += fmt::format("{} by {}", port, describe_owners(owners.owners_of(port)));
    }
    if (!other_error.empty()) detail += "; " + other_error;
    // A few taken ports only narrow the pool; most taken means ranks cannot find ports.
    CheckStatus status = free_ports < p.node_range.size() / 2 ? CheckStatus::kFail : CheckStatus::kWarn;
    out.push_back(make(options, "ports.node_range", status,
                       fmt::format("{} of {} ports in {} are free; taken: {}{}", free_ports, p.node_range.size(), range,
                                   detail, taken > 5 ? ", ..." : ""),
                       "stop what holds them or move the range: [ports] node_range = \"<first>-<last>\""));
  }

  auto eph = host.read_file("/proc/sys/net/ipv4/ip_local_port_range");
  int eph_first = 0, eph_last = 0;
  std::istringstream eph_in(eph.is_ok() ? *eph : "");
  if (eph_in >> eph_first >> eph_last) {
    bool overlap = eph_first <= p.node_range.last && p.node_range.first <= eph_last;
    if (overlap) {
      out.push_back(make(options, "ports.ephemeral", CheckStatus::kWarn,
                         fmt::format("node range {} overlaps the kernel's ephemeral ports {}-{}: outgoing connections may take them",
                                     range, eph_first, eph_last),
                         fmt::format("sysctl -w net.ipv4.ip_local_reserved_ports={}", range)));
    } else {
      out.push_back(make(options, "ports.ephemeral", CheckStatus::kOk,
                         fmt::format("node range {} is outside the ephemeral ports {}-{}", range, eph_first, eph_last)));
    }
  } else {
    out.push_back(make(options, "ports.ephemeral", CheckStatus::kSkip, "cannot read /proc/sys/net/ipv4/ip_local_port_range"));
  }
  return out;
}

}  // namespace llmctl::netcheck
