// HostView: everything the local probes learn about the machine, behind one
// interface so unit tests can fake /etc/hosts, /proc, interfaces, the resolver
// and port binding. RealHostView reads the real system. Implementations must be
// usable from one thread at a time; the probes never keep references past a call.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/gpu_inventory.h"
#include "common/status.h"

namespace llmctl::netcheck {

struct InterfaceAddress {
  std::string address;   // "10.0.0.5" or "fe80::1"
  int prefix_length = 0;
  bool ipv6 = false;
};

struct NetInterface {
  std::string name;      // "eth0"
  bool up = false;       // IFF_UP and IFF_RUNNING
  bool loopback = false;
  int mtu = 0;
  std::vector<InterfaceAddress> addresses;

  bool has_ipv4() const;
};

struct DiskSpace {
  std::uint64_t total_bytes = 0;
  std::uint64_t free_bytes = 0;  // available to unprivileged users
};

struct FileLimit {
  std::uint64_t soft = 0;
  std::uint64_t hard = 0;
};

// The route a packet to `peer` would take: source address and outgoing interface.
struct RouteInfo {
  std::string source_address;
  std::string interface_name;  // empty when no interface owns the source address
};

class HostView {
 public:
  virtual ~HostView() = default;

  virtual std::string hostname() const = 0;
  // getaddrinfo(name): numeric addresses, IPv4 first, duplicates removed.
  virtual Result<std::vector<std::string>> resolve(const std::string& name) const = 0;
  virtual std::vector<NetInterface> interfaces() const = 0;
  // Binds (never listens or connects) a TCP socket to address:port with
  // SO_REUSEADDR and closes it; the Status carries errno's text on failure.
  // `address` "0.0.0.0" means every address.
  virtual Status try_bind_tcp(const std::string& address, int port) const = 0;
  virtual Result<RouteInfo> route_to(const std::string& peer_address) const = 0;

  virtual Result<std::string> read_file(const std::string& path) const = 0;
  virtual std::vector<std::string> list_dir(const std::string& path) const = 0;
  virtual Result<std::string> read_link(const std::string& path) const = 0;
  virtual Result<DiskSpace> disk_space(const std::string& path) const = 0;
  virtual std::optional<std::string> env(const std::string& name) const = 0;

  virtual FileLimit open_file_limit() const = 0;
  // The kernel's view (adjtimex): true when the clock is disciplined by NTP/PTP.
  virtual bool clock_synchronized() const = 0;
  virtual GpuInventory gpus() const = 0;
  // "2.21.5" from ncclGetVersion through dlopen; empty when libnccl is absent.
  virtual std::string nccl_version() const = 0;
};

// The real machine.
class RealHostView : public HostView {
 public:
  std::string hostname() const override;
  Result<std::vector<std::string>> resolve(const std::string& name) const override;
  std::vector<NetInterface> interfaces() const override;
  Status try_bind_tcp(const std::string& address, int port) const override;
  Result<RouteInfo> route_to(const std::string& peer_address) const override;
  Result<std::string> read_file(const std::string& path) const override;
  std::vector<std::string> list_dir(const std::string& path) const override;
  Result<std::string> read_link(const std::string& path) const override;
  Result<DiskSpace> disk_space(const std::string& path) const override;
  std::optional<std::string> env(const std::string& name) const override;
  FileLimit open_file_limit() const override;
  bool clock_synchronized() const override;
  GpuInventory gpus() const override;
  std::string nccl_version() const override;
};

// True for 127.0.0.0/8 and ::1.
bool is_loopback_address(const std::string& address);

}  // namespace llmctl::netcheck
