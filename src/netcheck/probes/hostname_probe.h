// hostname.* and hosts.*: does this node's name lead to an address other nodes
// can reach?
//   hostname.resolve     the name resolves at all (getaddrinfo)
//   hostname.loopback    it resolves to 127.x / ::1 (Debian's 127.0.1.1 line): peers
//                        are then told to connect to themselves (Gloo's remote=[127.0.0.1])
//   hostname.interface   the address belongs to a local, up, non-loopback interface
//   hostname.node_ip     the advertised address (--node-ip-address / node_ip) is local
//   hosts.conflict       one name mapped to different addresses in /etc/hosts
//   hosts.duplicate      the same name/address pair on several lines
#pragma once

#include <vector>

#include "netcheck/check_result.h"
#include "netcheck/host_view.h"
#include "netcheck/probe_options.h"

namespace llmctl::netcheck {

std::vector<CheckResult> probe_hostname(const HostView& host, const ProbeOptions& options);

}  // namespace llmctl::netcheck
