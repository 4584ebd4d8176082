// interfaces.*: which NICs are up, which ones NCCL and Gloo will use, and which
// one traffic to each peer leaves from.
//   interfaces.up            up, non-loopback interfaces with addresses and MTU
//   interfaces.nccl_ifname   NCCL_SOCKET_IFNAME (environment, else cluster.toml [env])
//                            matches an up interface with an IPv4 address
//   interfaces.gloo_ifname   the same for GLOO_SOCKET_IFNAME (exact names)
//   interfaces.nccl_default  what NCCL picks when NCCL_SOCKET_IFNAME is unset
//   interfaces.route         per peer: the outgoing interface and source address,
//                            against the advertised address and NCCL's interface
#pragma once

#include <vector>

#include "netcheck/check_result.h"
#include "netcheck/host_view.h"
#include "netcheck/probe_options.h"

namespace llmctl::netcheck {

std::vector<CheckResult> probe_interfaces(const HostView& host, const ProbeOptions& options);

}  // namespace llmctl::netcheck
