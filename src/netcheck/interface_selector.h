// NCCL_SOCKET_IFNAME's syntax, as NCCL reads it: a comma-separated list of
// interface name prefixes; a leading '^' turns the whole list into exclusions;
// a leading '=' (after any '^') makes the names exact instead of prefixes.
//   "eth"      eth0, eth1, ...        "=eth0"   eth0 only
//   "^docker,lo"  anything but docker* and lo*    "^=eth1"  anything but eth1
// GLOO_SOCKET_IFNAME is a plain comma-separated list of exact names.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "netcheck/host_view.h"

namespace llmctl::netcheck {

class InterfaceSelector {
 public:
  static InterfaceSelector parse_nccl(std::string_view spec);
  static InterfaceSelector parse_exact_list(std::string_view spec);

  bool matches(std::string_view interface_name) const;
  // Interfaces that match and are usable (up, with an IPv4 address), in order.
  std::vector<const NetInterface*> select(const std::vector<NetInterface>& interfaces) const;

 private:
  std::vector<std::string> names_;
  bool exclude_ = false;
  bool exact_ = false;
};

// The interface NCCL picks when NCCL_SOCKET_IFNAME is unset: an ib* interface
// first, then anything but docker* and lo, then docker*, then lo. nullptr when
// nothing is up with an address.
const NetInterface* nccl_default_interface(const std::vector<NetInterface>& interfaces);

}  // namespace llmctl::netcheck
