#include "runtime/control/failure_detector.h"

namespace llmctl::control {

std::int64_t wall_time_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void FailureDetector::heartbeat(const std::string& node_id) {
  auto now = clock_.now();
  Entry& e = nodes_[node_id];
  e.last_heartbeat = now;
  e.deadline = now + timeout_;
}

void FailureDetector::watch_until(const std::string& node_id, Clock::TimePoint deadline) {
  nodes_[node_id].deadline = deadline;
}

void FailureDetector::forget(const std::string& node_id) { nodes_.erase(node_id); }

std::vector<std::string> FailureDetector::expired() {
  auto now = clock_.now();
  std::vector<std::string> out;
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    if (it->second.deadline <= now) {
      out.push_back(it->first);
      it = nodes_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

std::optional<std::chrono::milliseconds> FailureDetector::since_last_heartbeat(const std::string& node_id) const {
  auto it = nodes_.find(node_id);
  if (it == nodes_.end() || !it->second.last_heartbeat) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.now() - *it->second.last_heartbeat);
}

}  // namespace llmctl::control
