// The cluster-wide checks of `llmctl doctor --peers` / `doctor cluster.toml`:
// the checking node talks to each peer's DoctorService and compares.
//   peer.connect           the peer's doctor listener answers (control port)
//   peer.auth              the peer accepts our token and proves it knows it
//   reach.<port>           we can connect to each of the peer's ports (head, dashboard,
//   reach.node_range       client, api, the range), classified timeout/refused/reset
//   reach_back.<port>      the peer can connect to ours (it connects back on request)
//   names.resolve          each node resolves every other node's name to the address
//                          that node reports for itself (on the node that resolves)
//   versions.llmctl|driver|cuda|nccl   agree with the checking node
//   clock.offset           |peer clock - ours| < 1 s (RTT-corrected)
//   model.files            --model: same file list and sizes (--deep: SHA-256)
// Plus the peer's own local checks (hostname, interfaces, system, gpu) under its name.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "netcheck/check_result.h"
#include "netcheck/host_view.h"
#include "netcheck/probe_options.h"
#include "runtime/doctor/doctor_service.h"

namespace llmctl::doctor {

struct PeerCheckOptions {
  std::vector<std::string> peers;      // "host" or "host:port" (port: its doctor control port)
  std::string token;
  netcheck::ProbeOptions local;        // this node: name, ports, node_ip
  std::string model_path;              // empty: no model check
  bool deep = false;
  // cluster.toml mode: a peer with no listener is "skip" (not started yet), not "fail".
  bool missing_listener_is_skip = false;
  // Only what this node sees of its peers: connect, reach.*, versions, clock,
  // and names.resolve as this node resolves them. `doctor cluster.toml` runs
  // this on every host, so every pair is checked both ways without a host
  // running its own listener twice.
  bool outbound_only = false;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds port_timeout{1000};
  std::chrono::milliseconds call_timeout{15000};
  double max_clock_offset_ms = 1000;
};

// `listeners`: this node's own DoctorService, so peers can connect back to it;
// nullptr skips the reach_back.* checks.
std::vector<netcheck::CheckResult> check_peers(const netcheck::HostView& host, const PeerCheckOptions& options,
                                               const DoctorService* listeners);

}  // namespace llmctl::doctor
