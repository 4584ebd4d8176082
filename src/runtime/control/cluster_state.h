// ClusterState: what the head knows and must not forget across restarts —
// nodes, their resources and states, the KV store, placement groups, recent
// failures and the token's hash. Changed only by apply(record), the same code
// path for live changes and for replaying the log (state_log.h), so a
// recovered head is exactly the head that crashed.
//
// Heartbeat timing and resource *use* are deliberately not here: they are
// soft state, rebuilt within one heartbeat period after a restart.
//
// Thread safety: none; owned by the head's io_context thread.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "runtime/placement/placement_policy.h"
#include "runtime/placement/resource_set.h"

namespace llmctl::control {

using placement::ResourceSet;

enum class NodeState { kActive, kDead };
std::string_view node_state_name(NodeState state);

struct NodeRecord {
  std::string node_id;   // stable: kept in the node's state dir
  std::string name;      // hostname or --node-name
  std::string address;   // advertised IP
  std::string role;      // "head" or "worker"
  std::string version;   // llmctl version of the agent
  ResourceSet resources;  // total offered
  NodeState state = NodeState::kActive;
  std::string reason;     // why Dead: "stopped", "missed heartbeats ..."
  std::int64_t state_since_ms = 0;
};

// One bundle of a placement group, and the process its agent runs for it.
// A bundle without a command is a reservation: granted and held ("reserved"),
// nothing launched, never reported as exited (serve's rank 0 GPU).
struct BundleRecord {
  ResourceSet resources;
  std::vector<std::string> command;
  std::string pinned_node;          // node id or name it must go to; empty: anywhere
  std::string node_id;              // empty while pending
  std::string state = "pending";    // pending, reserved, starting, running, restarting, exited, failed, lost
  int exit_code = 0;
  int num_restarts = 0;
  int pid = 0;
  std::vector<int> gpu_indices;     // the node's GPUs it holds (gpu_indices.h); empty while pending
};

struct GroupRecord {
  std::string group_id;
  std::string name;
  placement::Strategy strategy = placement::Strategy::kPack;
  std::string restart = "never";  // never, on_failure, always
  int max_restarts = 3;
  std::map<std::string, std::string> env;
  std::vector<BundleRecord> bundles;
  std::string state = "pending";  // pending, placed, removed
  std::string reason;             // why pending
  std::int64_t created_ms = 0;
};

struct FailureEvent {
  std::int64_t time_ms = 0;
  std::string what;
};

class ClusterState {
 public:
  static constexpr std::size_t kMaxFailures = 50;

  // Applies one change record; INVALID_ARGUMENT names what is wrong with it.
  Status apply(const nlohmann::json& record);

  nlohmann::json to_json() const;
  static Result<ClusterState> from_json(const nlohmann::json& snapshot);

  // Resources granted to placed bundles on `node_id`.
  ResourceSet used_on(const std::string& node_id) const;
  // GPU indices held on `node_id` by placed groups other than `except_group`.
  std::set<int> gpu_indices_held(const std::string& node_id, const std::string& except_group) const;
  // KV keys starting with `prefix`, in order.
  std::vector<std::string> keys_with_prefix(const std::string& prefix) const;

  std::map<std::string, NodeRecord> nodes;
  std::map<std::string, std::string> kv;
  std::map<std::string, GroupRecord> groups;
  std::deque<FailureEvent> failures;
  std::string token_hash;
  std::uint64_t next_group_seq = 1;
};

// Record builders: the only shapes apply() accepts.
nlohmann::json node_record(const NodeRecord& node);
nlohmann::json group_record(const GroupRecord& group);
nlohmann::json kv_put_record(const std::string& key, const std::string& value);
nlohmann::json kv_delete_record(const std::string& prefix);
nlohmann::json failure_record(std::int64_t time_ms, const std::string& what);
nlohmann::json token_hash_record(const std::string& hash);

nlohmann::json node_to_json(const NodeRecord& node);
Result<NodeRecord> node_from_json(const nlohmann::json& j);
nlohmann::json group_to_json(const GroupRecord& group);
Result<GroupRecord> group_from_json(const nlohmann::json& j);

}  // namespace llmctl::control
