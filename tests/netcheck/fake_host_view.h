// FakeHostView: a scripted machine for the probe tests — files, directories,
// links, interfaces, resolver answers and taken ports are plain maps.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "netcheck/host_view.h"

namespace llmctl::netcheck::testing {

class FakeHostView : public HostView {
 public:
  std::string hostname_ = "node1";
  std::map<std::string, std::vector<std::string>> dns_;  // name -> addresses
  std::vector<NetInterface> interfaces_;
  std::set<int> taken_ports_;
  std::map<std::string, RouteInfo> routes_;           // peer address -> route
  std::map<std::string, std::string> files_;
  std::map<std::string, std::vector<std::string>> dirs_;
  std::map<std::string, std::string> links_;
  std::map<std::string, DiskSpace> disks_;
  std::map<std::string, std::string> env_;
  FileLimit nofile_{1048576, 1048576};
  bool clock_synced_ = true;
  GpuInventory gpus_;
  std::string nccl_;
  mutable int num_bind_calls_ = 0;

  // A typical healthy node: lo, eth0 10.0.0.1/24, docker0; hosts maps node1.
  static FakeHostView healthy() {
    FakeHostView h;
    h.interfaces_ = {
        {"lo", true, true, 65536, {{"127.0.0.1", 8, false}}},
        {"docker0", true, false, 1500, {{"172.17.0.1", 16, false}}},
        {"eth0", true, false, 1500, {{"10.0.0.1", 24, false}}},
    };
    h.files_["/etc/hosts"] = "127.0.0.1 localhost\n10.0.0.1 node1\n10.0.0.2 node2\n";
    h.dns_["node1"] = {"10.0.0.1"};
    h.dns_["node2"] = {"10.0.0.2"};
    h.files_["/proc/sys/net/ipv4/ip_local_port_range"] = "32768\t60999\n";
    h.disks_["/dev/shm"] = {64ull << 30, 64ull << 30};
    h.disks_["/var/lib/llmctl"] = {1ull << 40, 500ull << 30};
    h.routes_["10.0.0.2"] = {"10.0.0.1", "eth0"};
    return h;
  }

  std::string hostname() const override { return hostname_; }
  Result<std::vector<std::string>> resolve(const std::string& name) const override {
    auto it = dns_.find(name);
    if (it == dns_.end()) return Status::not_found(name + " does not resolve");
    return it->second;
  }
  std::vector<NetInterface> interfaces() const override { return interfaces_; }
  Status try_bind_tcp(const std::string&, int port) const override {
    ++num_bind_calls_;
    if (taken_ports_.count(port)) return Status::already_exists("Address already in use");
    return Status::ok();
  }
  Result<RouteInfo> route_to(const std::string& peer) const override {
    auto it = routes_.find(peer);
    if (it == routes_.end()) return Status::unavailable("Network is unreachable");
    return it->second;
  }
  Result<std::string> read_file(const std::string& path) const override {
    auto it = files_.find(path);
    if (it == files_.end()) return Status::not_found(path);
    return it->second;
  }
  std::vector<std::string> list_dir(const std::string& path) const override {
    auto it = dirs_.find(path);
    return it == dirs_.end() ? std::vector<std::string>{} : it->second;
  }
  Result<std::string> read_link(const std::string& path) const override {
    auto it = links_.find(path);
    if (it == links_.end()) return Status::not_found(path);
    return it->second;
  }
  Result<DiskSpace> disk_space(const std::string& path) const override {
    auto it = disks_.find(path);
    if (it == disks_.end()) return Status::not_found(path);
    return it->second;
  }
  std::optional<std::string> env(const std::string& name) const override {
    auto it = env_.find(name);
    if (it == env_.end()) return std::nullopt;
    return it->second;
  }
  FileLimit open_file_limit() const override { return nofile_; }
  bool clock_synchronized() const override { return clock_synced_; }
  GpuInventory gpus() const override { return gpus_; }
  std::string nccl_version() const override { return nccl_; }
};

}  // namespace llmctl::netcheck::testing
