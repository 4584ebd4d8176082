// PortProber: real TCP connects to many ports of one host at once, each bounded
// by a timeout, classified the way a user needs to fix them:
//   ok          the handshake completed (something listens and the path is open)
//   refused     RST to the SYN: the path is open but nothing listens
//   timeout     no answer: a firewall drops the packets (or the host is down)
//   unreachable ICMP unreachable / no route: a REJECT rule or a routing problem
//   reset       the connection was reset while opening
// Connections are closed right after they open; nothing is sent.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace llmctl::doctor {

enum class ProbeOutcome { kOk, kRefused, kTimeout, kUnreachable, kReset, kError };

std::string_view probe_outcome_name(ProbeOutcome outcome);  // "ok", "refused", ...
ProbeOutcome parse_probe_outcome(std::string_view name);    // kError for unknown names

struct PortProbe {
  int port = 0;
  ProbeOutcome outcome = ProbeOutcome::kError;
  double elapsed_ms = 0;
  std::string detail;  // the socket error's text when not ok
};

struct PortProberOptions {
  std::chrono::milliseconds timeout{1000};
  int max_concurrent = 1024;  // bounded by the open-file limit of the caller
};

// Blocks until every port is probed: about timeout * ceil(ports / max_concurrent)
// in the worst case. Results are in the order of `ports`.
std::vector<PortProbe> probe_ports(const std::string& address, const std::vector<int>& ports,
                                   const PortProberOptions& options = {});

// "2001 of 2001 ports ok" / "0 of 2001 ok: 2001 timeout" for a range's results.
std::string summarize_probes(const std::vector<PortProbe>& probes);

}  // namespace llmctl::doctor
