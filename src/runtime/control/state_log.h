// StateLog: the head's durable memory — an append-only log of change records
// (cluster_state.h) plus a periodic snapshot, both in the head's state dir:
//   <dir>/snapshot.json   the whole ClusterState; replaced atomically (tmp + fsync + rename)
//   <dir>/state.log       records since that snapshot, one per line: "<fnv64 hex> <json>\n"
// Every append is fdatasync'd before it returns, so a reply sent after it
// survives kill -9. On open, a torn or corrupt tail (a crash mid-write) ends
// the replay and is cut off; records before it are kept.
//
// Thread safety: none; owned by the head's io_context thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "runtime/control/cluster_state.h"

namespace llmctl::control {

struct RecoveryStats {
  bool had_snapshot = false;
  std::size_t num_records_replayed = 0;
  std::size_t num_bytes_discarded = 0;  // torn tail cut off
};

class StateLog {
 public:
  // Creates `dir` if needed, recovers the state into *state.
  static Result<std::unique_ptr<StateLog>> open(const std::string& dir, ClusterState* state, RecoveryStats* stats);
  ~StateLog();

  Status append(const nlohmann::json& record);
  // Writes `state` as the new snapshot and empties the log.
  Status snapshot(const ClusterState& state);
  std::size_t num_records_since_snapshot() const { return num_records_; }

 private:
  StateLog(std::string dir, int fd) : dir_(std::move(dir)), fd_(fd) {}
  std::string dir_;
  int fd_ = -1;
  std::size_t num_records_ = 0;
};

// FNV-1a 64-bit, as 16 hex digits: catches torn and bit-flipped lines.
std::string record_checksum(std::string_view data);

}  // namespace llmctl::control
