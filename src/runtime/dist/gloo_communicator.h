// A Communicator over Gloo's TCP transport, for tensor parallelism on CPUs.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "runtime/dist/communicator.h"
#include "runtime/dist/rendezvous_store.h"

namespace llmctl::dist {

struct GlooOptions {
  int rank = 0;
  int world_size = 1;
  // Keys in the store are prefixed with this, so several groups can share it.
  std::string group = "tp";
  // The NIC to bind (GLOO_SOCKET_IFNAME); empty: the address `hostname`
  // resolves to, else the one the default route uses.
  std::string interface;
  std::string hostname;
  // Rendezvous and every collective; past it the call fails naming the peer.
  std::chrono::milliseconds timeout{30000};
};

// Joins the group: blocks until all world_size ranks have rendezvoused in
// `store` or options.timeout passes (the error names the ranks that did not
// show up and the store).
Result<std::unique_ptr<Communicator>> connect_gloo(const GlooOptions& options, RendezvousStore& store);

}  // namespace llmctl::dist
