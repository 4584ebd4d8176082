// ports.*: can this node bind each cluster port? A taken port names its owner.
//   ports.head / ports.dashboard / ports.client / ports.api   one port each
//   ports.node_range      how many of the range are free (binds all; connects to none)
//   ports.ephemeral       the range overlaps net.ipv4.ip_local_port_range
#pragma once

#include <vector>

#include "netcheck/check_result.h"
#include "netcheck/host_view.h"
#include "netcheck/probe_options.h"

namespace llmctl::netcheck {

std::vector<CheckResult> probe_ports(const HostView& host, const ProbeOptions& options);

}  // namespace llmctl::netcheck
