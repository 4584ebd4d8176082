// Who a rank of a group is, as far as its peers need to know to name it in an
// error: the node, the address and NIC its collectives use, its pid, and the
// port of its LivenessSocket. Every rank publishes its own at rendezvous
// (exchange_endpoints), so a timeout on any node can say which peer it waited
// for and where that peer lives.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "runtime/dist/rendezvous_store.h"

namespace llmctl::dist {

struct RankEndpoint {
  int rank = 0;
  std::string host;       // node name
  std::string address;    // IP the rank's collectives bind
  std::string interface;  // NIC holding `address` ("" when no NIC has it)
  int pid = 0;
  std::uint16_t liveness_port = 0;

  // "rank 1 (host-b, 10.0.0.2, eth1, pid 4242)"
  std::string describe() const;
  std::string to_json() const;
  static Result<RankEndpoint> from_json(const std::string& text);
};

struct LocalAddress {
  std::string address;
  std::string interface;
};

// The address this rank's collectives use:
//   interface set: its IPv4 address (NOT_FOUND naming the interface and the
//     ones that exist);
//   else hostname set: what it resolves to;
//   else what this machine's hostname resolves to, or failing that the
//     address of the default route.
// `interface` is filled with the NIC holding the address when one does.
Result<LocalAddress> choose_local_address(const std::string& interface, const std::string& hostname);

// The address (and its NIC) this machine reaches `host` from: what a rank on
// a cluster node binds when no GLOO_SOCKET_IFNAME names one, so it listens
// where the head, and so every other node, can reach it. IPv4 only.
Result<LocalAddress> address_toward(const std::string& host);

// This machine's host name (gethostname).
std::string local_host_name();

// Publishes `self` under "<group>/rank/<self.rank>" and waits until every
// rank of 0..world_size has published, or `deadline` passes. On time-out the
// error is DEADLINE_EXCEEDED and names every rank that did not join and the
// store. Returns the endpoints indexed by rank.
Result<std::vector<RankEndpoint>> exchange_endpoints(RendezvousStore& store, const std::string& group,
                                                     const RankEndpoint& self, int world_size,
                                                     std::chrono::steady_clock::time_point deadline);

}  // namespace llmctl::dist
