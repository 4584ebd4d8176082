#include "netcheck/probes/hostname_probe.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "netcheck/hosts_file.h"
#include "netcheck/interface_selector.h"

namespace llmctl::netcheck {
namespace {

CheckResult make(const ProbeOptions& o, std::string id, CheckStatus status, std::string message,
                 std::string fix = "") {
  return CheckResult{o.node_name, std::move(id), status, std::move(message), std::move(fix)};
}

// Addresses of up, non-loopback interfaces, and the first IPv4 one (for fixes).
std::set<std::string> local_addresses(const std::vector<NetInterface>& interfaces, std::string* first_ipv4) {
  std::set<std::string> out;
  for (const auto& iface : interfaces) {
    if (!iface.up || iface.loopback) continue;
    for (const auto& a : iface.addresses) {
      out.insert(a.address);
      if (!a.ipv6 && first_ipv4->empty()) *first_ipv4 = a.address;
    }
  }
  return out;
}

}  // namespace

std::vector<CheckResult> probe_hostname(const HostView& host, const ProbeOptions& options) {
  std::vector<CheckResult> out;
  const std::string name = host.hostname();
  auto interfaces = host.interfaces();
  std::string suggested;
  auto locals = local_addresses(interfaces, &suggested);
  // Suggest what NCCL would use (skips docker*), not just the first interface.
  if (const NetInterface* nccl = nccl_default_interface(interfaces); nccl != nullptr && !nccl->loopback) {
    for (const auto& a : nccl->addresses) {
      if (!a.ipv6) {
        suggested = a.address;
        break;
      }
    }
  }
  if (!options.node_ip.empty()) suggested = options.node_ip;
  if (suggested.empty()) suggested = "<this node's address>";

  auto hosts_text = host.read_file("/etc/hosts");
  HostsFile hosts = HostsFile::parse(hosts_text.is_ok() ? *hosts_text : "");

  auto resolved = host.resolve(name);
  if (!resolved.is_ok() || resolved->empty()) {
    out.push_back(make(options, "hostname.resolve", CheckStatus::kFail,
                       fmt::format("hostname {} does not resolve", name),
                       fmt::format("echo '{} {}' >> /etc/hosts", suggested, name)));
  } else {
    out.push_back(make(options, "hostname.resolve", CheckStatus::kOk,
                       fmt::format("hostname {} resolves to {}", name, fmt::join(*resolved, ", "))));
    std::vector<std::string> loopback;
    for (const auto& a : *resolved) {
      if (is_loopback_address(a)) loopback.push_back(a);
    }
    if (!loopback.empty()) {
      std::string where;
      for (const auto* e : hosts.lookup(name)) {
        if (is_loopback_address(e->address)) where += fmt::format(" (/etc/hosts line {}: {})", e->line, e->address);
      }
      out.push_back(make(options, "hostname.loopback", CheckStatus::kFail,
                         fmt::format("hostname {} resolves to loopback {}{}: peers would connect to themselves",
                                     name, fmt::join(loopback, ", "), where),
                         fmt::format("in /etc/hosts replace '{} {}' with '{} {}' (or drop {} from the loopback line)",
                                     loopback.front(), name, suggested, name, name)));
    } else {
      out.push_back(make(options, "hostname.loopback", CheckStatus::kOk, fmt::format("hostname {} does not map to loopback", name)));
    }
    std::vector<std::string> remote;
    for (const auto& a : *resolved) {
      if (!is_loopback_address(a) && !locals.count(a)) remote.push_back(a);
    }
    bool any_local = std::any_of(resolved->begin(), resolved->end(), [&](const std::string& a) { return locals.count(a) > 0; });
    if (any_local && remote.empty()) {
      out.push_back(make(options, "hostname.interface", CheckStatus::kOk,
                         fmt::format("hostname {} resolves to an address of an up interface", name)));
    } else if (!remote.empty()) {
      out.push_back(make(options, "hostname.interface", CheckStatus::kFail,
                         fmt::format("hostname {} resolves to {}, which no up interface of this node has", name,
                                     fmt::join(remote, ", ")),
                         fmt::format("fix the /etc/hosts or DNS entry: '{} {}'", suggested, name)));
    } else if (loopback.empty()) {
      out.push_back(make(options, "hostname.interface", CheckStatus::kFail,
                         fmt::format("hostname {} resolves to no address of an up, non-loopback interface", name),
                         fmt::format("echo '{} {}' >> /etc/hosts", suggested, name)));
    }
  }

  if (!options.node_ip.empty()) {
    if (locals.count(options.node_ip)) {
      out.push_back(make(options, "hostname.node_ip", CheckStatus::kOk,
                         fmt::format("advertised address {} belongs to an up interface", options.node_ip)));
    } else {
      out.push_back(make(options, "hostname.node_ip", CheckStatus::kFail,
                         fmt::format("advertised address {} is not an address of any up interface here", options.node_ip),
                         "set node_ip (or --node-ip-address) to one of: " +
                             fmt::format("{}", fmt::join(std::vector<std::string>(locals.begin(), locals.end()), ", "))));
    }
  }

  // /etc/hosts sanity, for every name it lists.
  std::map<std::string, std::vector<const HostsEntry*>> by_name;
  for (const auto& e : hosts.entries()) {
    for (const auto& n : e.names) by_name[n].push_back(&e);
  }
  std::vector<std::string> conflicts, duplicates;
  for (const auto& [n, entries] : by_name) {
    std::map<std::string, std::vector<int>> v4_lines;
    std::set<std::string> v4;
    for (const auto* e : entries) {
      if (e->address.find(':') != std::string::npos) continue;
      v4_lines[e->address].push_back(e->line);
      v4.insert(e->address);
    }
    // localhost legitimately maps to 127.0.0.1 and the like; only other names matter.
    if (n == "localhost" || n.rfind("localhost.", 0) == 0 || n.rfind("ip6-", 0) == 0) continue;
    if (v4.size() > 1) {
      std::string detail;
      for (const auto& [addr, lines] : v4_lines) {
        detail += fmt::format("{}{} (line {})", detail.empty() ? "" : ", ", addr, fmt::join(lines, ","));
      }
      conflicts.push_back(fmt::format("{} -> {}", n, detail));
    }
    for (const auto& [addr, lines] : v4_lines) {
      if (lines.size() > 1) duplicates.push_back(fmt::format("{} {} (lines {})", addr, n, fmt::join(lines, ",")));
    }
  }
  if (!hosts_text.is_ok()) {
    out.push_back(make(options, "hosts.conflict", CheckStatus::kSkip, "cannot read /etc/hosts"));
  } else if (!conflicts.empty()) {
    out.push_back(make(options, "hosts.conflict", CheckStatus::kFail,
                       fmt::format("/etc/hosts maps a name to different addresses: {}", fmt::join(conflicts, "; ")),
                       "keep one line per name in /etc/hosts, with the address peers reach it at"));
  } else {
    out.push_back(make(options, "hosts.conflict", CheckStatus::kOk, "/etc/hosts maps each name to one address"));
  }
  if (!duplicates.empty()) {
    out.push_back(make(options, "hosts.duplicate", CheckStatus::kWarn,
                       fmt::format("/etc/hosts repeats entries: {}", fmt::join(duplicates, "; ")),
                       "delete the repeated lines from /etc/hosts"));
  }
  return out;
}

}  // namespace llmctl::netcheck
