#include "runtime/dist/group_failure.h"

#include <algorithm>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "runtime/dist/liveness_socket.h"

namespace llmctl::dist {

std::string describe_self(const std::string& group, const RankEndpoint& self) {
  std::string where = self.address;
  if (!self.interface.empty()) where += ", " + self.interface;
  return fmt::format("{} rank {} on {} ({})", group, self.rank, self.host, where);
}

Status describe_group_failure(const GroupFailure& f, const std::string& op, const std::string& detail, bool timed_out,
                              const std::string& waited_for) {
  auto probe_timeout = std::min(f.timeout, std::chrono::milliseconds(1000));
  // A reset can reach us before the dying peer's kernel has closed its
  // liveness socket; after a socket error, look again for a moment.
  auto settle_until = std::chrono::steady_clock::now() +
                      (timed_out ? std::chrono::milliseconds(0) : std::chrono::milliseconds(500));
  std::vector<std::string> gone, silent;
  while (true) {
    gone.clear();
    silent.clear();
    for (const RankEndpoint& peer : *f.endpoints) {
      if (peer.rank == f.rank) continue;
      switch (probe_peer(peer.address, peer.liveness_port, probe_timeout)) {
        case PeerState::kGone:
          gone.push_back(peer.describe());
          break;
        case PeerState::kSilent:
          silent.push_back(peer.describe());
          break;
        case PeerState::kAlive:
          break;
      }
    }
    if (!gone.empty() || !silent.empty() || std::chrono::steady_clock::now() >= settle_until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!gone.empty()) {
    return Status::unavailable(fmt::format("{}: {} failed: {} {} exited (its liveness port refuses connections) [{}: {}]",
                                           f.self, op, fmt::join(gone, " and "), gone.size() == 1 ? "has" : "have",
                                           f.backend, detail));
  }
  if (!silent.empty()) {
    return Status::unavailable(
        fmt::format("{}: {} failed: {} does not answer within {} ms (host down, cut off or firewalled) [{}: {}]", f.self,
                    op, fmt::join(silent, " and "), probe_timeout.count(), f.backend, detail));
  }
  if (timed_out) {
    return Status::deadline_exceeded(fmt::format(
        "{}: {} timed out after {} ms waiting for {}; every peer is still running, so one is stuck or out of step "
        "(group \"{}\" in {}) [{}: {}]",
        f.self, op, f.timeout.count(), waited_for.empty() ? "a peer" : waited_for, f.group, f.store_name, f.backend,
        detail));
  }
  return Status::unavailable(fmt::format("{}: {} failed [{}: {}]", f.self, op, f.backend, detail));
}

}  // namespace llmctl::dist
