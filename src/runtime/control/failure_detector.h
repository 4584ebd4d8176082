// FailureDetector: declares a node dead when no heartbeat arrived for
// `timeout` (heartbeat period x allowed misses; default 200 ms x 5 = 1 s).
// Pure bookkeeping over an injected Clock; the head polls expired() from its
// timer. Cost: O(nodes) per poll, a few microseconds per thousand nodes.
//
// Thread safety: none; owned by the head's io_context thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/control/clock.h"

namespace llmctl::control {

class FailureDetector {
 public:
  FailureDetector(const Clock& clock, std::chrono::milliseconds timeout) : clock_(clock), timeout_(timeout) {}

  // A heartbeat (or registration) from `node_id`: it lives until now + timeout.
  void heartbeat(const std::string& node_id);
  // Gives a node until `deadline` without heartbeats, e.g. nodes recovered
  // from the log get time to re-attach after a head restart.
  void watch_until(const std::string& node_id, Clock::TimePoint deadline);
  void forget(const std::string& node_id);
  // Nodes whose deadline passed; they are forgotten (reported once).
  std::vector<std::string> expired();
  // Time since the last heartbeat, if watched and any arrived.
  std::optional<std::chrono::milliseconds> since_last_heartbeat(const std::string& node_id) const;

  std::chrono::milliseconds timeout() const { return timeout_; }
  std::size_t num_watched() const { return nodes_.size(); }

 private:
  struct Entry {
    Clock::TimePoint deadline;
    std::optional<Clock::TimePoint> last_heartbeat;
  };
  const Clock& clock_;
  std::chrono::milliseconds timeout_;
  std::unordered_map<std::string, Entry> nodes_;
};

}  // namespace llmctl::control
