#include "runtime/dist/rank_endpoint.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

namespace llmctl::dist {
namespace {

std::string ip_string(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof(buf));
  } else if (sa->sa_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof(buf));
  }
  return buf;
}

// (interface, IPv4 address) of every NIC that has one; IPv6 after IPv4.
std::vector<std::pair<std::string, std::string>> interface_addresses() {
  std::vector<std::pair<std::string, std::string>> v4, v6;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return {};
  for (ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
    if (it->ifa_addr == nullptr) continue;
    if (it->ifa_addr->sa_family == AF_INET) v4.emplace_back(it->ifa_name, ip_string(it->ifa_addr));
    if (it->ifa_addr->sa_family == AF_INET6) v6.emplace_back(it->ifa_name, ip_string(it->ifa_addr));
  }
  ::freeifaddrs(list);
  v4.insert(v4.end(), v6.begin(), v6.end());
  return v4;
}

std::string interface_of(const std::string& address) {
  for (const auto& [name, ip] : interface_addresses()) {
    if (ip == address) return name;
  }
  return "";
}

Result<std::string> resolve(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &result);
  if (rc != 0) return Status::not_found(fmt::format("resolving \"{}\": {}", host, ::gai_strerror(rc)));
  // IPv4 first: Gloo and NCCL peers of one group must agree on a family.
  std::string v4, v6;
  for (addrinfo* it = result; it != nullptr; it = it->ai_next) {
    if (it->ai_family == AF_INET && v4.empty()) v4 = ip_string(it->ai_addr);
    if (it->ai_family == AF_INET6 && v6.empty()) v6 = ip_string(it->ai_addr);
  }
  ::freeaddrinfo(result);
  if (!v4.empty()) return v4;
  if (!v6.empty()) return v6;
  return Status::not_found(fmt::format("resolving \"{}\": no address", host));
}

// The source address the kernel would use toward `ipv4` (the default route
// for a documentation address); a UDP connect sends nothing.
Result<std::string> route_source_address(const std::string& ipv4) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::io_error(fmt::format("socket: {}", std::strerror(errno)));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);
  if (::inet_pton(AF_INET, ipv4.c_str(), &to.sin_addr) != 1) {
    ::close(fd);
    return Status::invalid_argument(fmt::format("\"{}\" is not an IPv4 address", ipv4));
  }
  sockaddr_in self{};
  socklen_t len = sizeof(self);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&self), &len) == 0;
  ::close(fd);
  if (!ok) return Status::unavailable(fmt::format("no route to {}", ipv4));
  return ip_string(reinterpret_cast<sockaddr*>(&self));
}

Result<std::string> default_route_address() { return route_source_address("192.0.2.1"); }

}  // namespace

std::string RankEndpoint::describe() const {
  std::string where = address;
  if (!interface.empty()) where += ", " + interface;
  return fmt::format("rank {} ({}, {}, pid {})", rank, host, where, pid);
}

std::string RankEndpoint::to_json() const {
  return nlohmann::json{{"rank", rank},       {"host", host}, {"address", address}, {"interface", interface},
                        {"pid", pid},         {"liveness_port", liveness_port}}
      .dump();
}

Result<RankEndpoint> RankEndpoint::from_json(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::invalid_argument("rank endpoint: not a JSON object");
  RankEndpoint e;
  try {
    e.rank = j.at("rank").get<int>();
    e.host = j.at("host").get<std::string>();
    e.address = j.at("address").get<std::string>();
    e.interface = j.value("interface", "");
    e.pid = j.value("pid", 0);
    e.liveness_port = j.value("liveness_port", std::uint16_t{0});
  } catch (const nlohmann::json::exception& ex) {
    return Status::invalid_argument(fmt::format("rank endpoint: {}", ex.what()));
  }
  return e;
}

std::string local_host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

Result<LocalAddress> choose_local_address(const std::string& interface, const std::string& hostname) {
  if (!interface.empty()) {
    std::vector<std::string> names;
    for (const auto& [name, ip] : interface_addresses()) {
      if (name == interface) return LocalAddress{ip, name};
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
    return Status::not_found(fmt::format("network interface \"{}\" has no address (interfaces with one: {})",
                                         interface, fmt::join(names, ", ")));
  }
  if (!hostname.empty()) {
    ASSIGN_OR_RETURN(std::string ip, resolve(hostname));
    return LocalAddress{ip, interface_of(ip)};
  }
  if (auto ip = resolve(local_host_name()); ip.is_ok()) {
    std::string name = interface_of(*ip);
    // The 127.0.1.1 trap: a hostname that resolves to an address no NIC has
    // cannot be bound; the default route's address can.
    if (!name.empty()) return LocalAddress{*ip, name};
  }
  ASSIGN_OR_RETURN(std::string ip, default_route_address());
  return LocalAddress{ip, interface_of(ip)};
}

Result<LocalAddress> address_toward(const std::string& host) {
  ASSIGN_OR_RETURN(std::string ip, resolve(host));
  auto source = route_source_address(ip);
  if (!source.is_ok()) return source.status().with_context(fmt::format("choosing the address toward {}", host));
  return LocalAddress{*source, interface_of(*source)};
}

Result<std::vector<RankEndpoint>> exchange_endpoints(RendezvousStore& store, const std::string& group,
                                                     const RankEndpoint& self, int world_size,
                                                     std::chrono::steady_clock::time_point deadline) {
  auto key = [&](int r) { return fmt::format("{}/rank/{}", group, r); };
  RETURN_IF_ERROR(store.set(key(self.rank), self.to_json()));
  std::vector<RankEndpoint> endpoints(static_cast<std::size_t>(world_size));
  std::vector<int> missing;
  for (int r = 0; r < world_size; ++r) {
    if (r == self.rank) {
      endpoints[static_cast<std::size_t>(r)] = self;
      continue;
    }
    // After the first rank that is late, the others get one look each, so the
    // error lists every absent rank without waiting the timeout again.
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (!missing.empty() || left.count() < 0) left = std::chrono::milliseconds(0);
    auto value = store.get(key(r), left);
    if (!value.is_ok()) {
      if (value.status().code() != StatusCode::kDeadlineExceeded) return value.status();
      missing.push_back(r);
      continue;
    }
    ASSIGN_OR_RETURN(RankEndpoint e, RankEndpoint::from_json(*value));
    if (e.rank != r) {
      return Status::internal(fmt::format("{}: key {} holds rank {}", store.describe(), key(r), e.rank));
    }
    endpoints[static_cast<std::size_t>(r)] = std::move(e);
  }
  if (!missing.empty()) {
    std::vector<std::string> names;
    for (int r : missing) names.push_back(fmt::format("rank {}", r));
    return Status::deadline_exceeded(fmt::format("{} of {} did not join (group \"{}\" in {})", fmt::join(names, ", "),
                                                 world_size, group, store.describe()));
  }
  return endpoints;
}

}  // namespace llmctl::dist
