// Which process holds a listening TCP port: /proc/net/tcp{,6} gives the socket
// inode of each listener, /proc/<pid>/fd/* links ("socket:[inode]") give its owner.
// Only processes whose fd directory we may read are found (all of them as root).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "netcheck/host_view.h"

namespace llmctl::netcheck {

struct PortOwner {
  int pid = 0;             // 0 when the owner could not be seen
  std::string command;     // /proc/<pid>/comm
};

// Listening TCP sockets from the text of /proc/net/tcp or tcp6: port -> inodes.
std::multimap<int, std::string> parse_proc_net_tcp_listeners(std::string_view text);

class SocketOwners {
 public:
  explicit SocketOwners(const HostView& host) : host_(host) {}

  // The processes listening on `port` (any address); empty when none is seen.
  // The first call scans /proc once; later calls reuse that scan.
  std::vector<PortOwner> owners_of(int port);

 private:
  void scan();

  const HostView& host_;
  bool scanned_ = false;
  std::multimap<int, std::string> port_inodes_;
  std::map<std::string, PortOwner> inode_owner_;
};

// "python3 (pid 4242)" or "another process" when unknown.
std::string describe_owners(const std::vector<PortOwner>& owners);

}  // namespace llmctl::netcheck
