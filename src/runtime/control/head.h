// Head: the cluster's control-plane server. Owns the ClusterState (with its
// StateLog), the FailureDetector, placement of bundle requests and the KV
// store; speaks to agents and clients over Channels (transport/channel.h),
// one per agent, every one authenticated with the cluster token.
//
// Requests (type -> reply data):
//   node.register  {node_id, name, address, role, version, resources, bundles} -> {heartbeat_period_ms}
//   node.leave     {node_id, reason}                -> {}            node is Dead at once ("stopped")
//   cluster.status {}                                -> the whole picture (see status_json())
//   kv.put {key, value, overwrite} / kv.get {key} / kv.wait {key, timeout_ms}
//   kv.delete {prefix} -> {num_deleted} / kv.list {prefix} -> {keys}
//   placement.submit {name, strategy, bundles: [{resources, command, pinned_node}], restart, max_restarts, env}
//                    a bundle without a command is only reserved; GPU bundles get gpu_indices
//   placement.remove {group_id}
//   stats.reset    {}                                -> {}            clears heartbeat counters (benchmarks)
// Pushes from agents: node.heartbeat {usage, sent_us}; bundle.update {group_id, index, state, ...}.
// Pushes to agents:   bundle.launch {group_id, index, command, env, restart, max_restarts[, gpu_indices]};
//                    bundle.kill.
//
// Threading: single-threaded — every member runs on the io_context passed
// in, which must be run by exactly one thread (that is the head's strand).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <asio.hpp>
#include <nlohmann/json.hpp>

#include "common/status.h"
#include "runtime/control/clock.h"
#include "runtime/control/cluster_state.h"
#include "runtime/control/failure_detector.h"
#include "runtime/control/state_log.h"
#include "runtime/transport/channel.h"
#include "runtime/transport/tls_context.h"

namespace llmctl::control {

struct HeadOptions {
  std::string state_dir;                 // the head's own folder (log, snapshot)
  std::string bind_address = "0.0.0.0";
  std::uint16_t port = 6379;             // 0: any free port (tests, benchmarks)
  std::string advertise_address;         // shown in status; default: bind address
  std::string token;
  int heartbeat_period_ms = 200;
  int num_missed_heartbeats = 5;         // Dead after period x misses
  int recovery_grace_ms = 5000;          // after a restart, time for agents to re-attach
  int handshake_timeout_ms = 5000;
  int idle_timeout_ms = 10000;           // a connection silent this long is closed
  std::size_t max_frame_bytes = 1u << 20;
  std::size_t snapshot_every_records = 1000;
  bool durable = true;                   // false: no state dir at all (benchmarks)
  transport::TlsContext tls;             // set: every connection is TLS (a server context)
};

class Head {
 public:
  Head(asio::io_context& io, HeadOptions options, const Clock& clock);
  ~Head();
  Head(const Head&) = delete;
  Head& operator=(const Head&) = delete;

  // Recovers the state dir, then listens. Returns the bound port.
  Result<std::uint16_t> start();
  // Closes the listener and every connection; state stays on disk.
  void stop();

  const ClusterState& state() const { return state_; }
  nlohmann::json status_json() const;
  const RecoveryStats& recovery() const { return recovery_; }

 private:
  void accept_next();
  void on_open(std::shared_ptr<transport::Channel> channel);
  void on_message(const std::shared_ptr<transport::Channel>& channel, const transport::Message& message,
                  std::uint64_t id);
  void on_close(transport::Channel* channel);
  void on_heartbeat(transport::Channel* channel, const nlohmann::json& data);
  void on_bundle_update(transport::Channel* channel, const nlohmann::json& data);

  Result<nlohmann::json> handle_register(const std::shared_ptr<transport::Channel>& channel, const nlohmann::json& data);
  Result<nlohmann::json> handle_leave(const nlohmann::json& data);
  Result<nlohmann::json> handle_kv(const std::string& type, const nlohmann::json& data);
  void handle_kv_wait(const std::shared_ptr<transport::Channel>& channel, std::uint64_t id, const nlohmann::json& data);
  Result<nlohmann::json> handle_submit(const nlohmann::json& data);
  Result<nlohmann::json> handle_remove(const nlohmann::json& data);

  void tick();
  void mark_dead(const std::string& node_id, const std::string& reason, bool is_failure);
  // Active nodes with a connected agent and what they have left: what placement chooses from.
  std::vector<placement::NodeCapacity> placeable_nodes() const;
  void try_place(GroupRecord& group);
  // Places the bundles of a placed group that went back to pending when their
  // node died; false (with group.reason set) while they do not fit.
  bool try_replace(GroupRecord& group);
  static bool has_pending_bundles(const GroupRecord& group);
  // Gives each of `which` (placed, on their node) the lowest GPU indices of
  // its node that nothing else there holds; fails naming the node when too few are free.
  Status assign_gpu_indices(GroupRecord& group, const std::vector<std::size_t>& which) const;
  void place_pending();
  void launch_bundle(const GroupRecord& group, std::size_t index);
  // Logs then applies a record; the one way state changes.
  Status commit(const nlohmann::json& record);
  void note_failure(const std::string& what);

  asio::io_context& io_;
  HeadOptions options_;
  const Clock& clock_;
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer tick_timer_;
  transport::ChannelOptions channel_options_;
  ClusterState state_;
  std::unique_ptr<StateLog> log_;
  RecoveryStats recovery_;
  FailureDetector detector_;
  std::int64_t started_ms_ = 0;
  std::chrono::steady_clock::time_point next_tick_due_{};  // when the pending tick should run
  bool tick_deferred_ = false;                              // the last tick was skipped as stalled
  bool stopped_ = false;

  std::map<std::string, std::shared_ptr<transport::Channel>> agent_channels_;  // node id -> its agent
  std::map<transport::Channel*, std::string> channel_nodes_;                     // reverse
  std::map<transport::Channel*, std::shared_ptr<transport::Channel>> channels_;  // every open one
  std::map<std::string, nlohmann::json> usage_;                                  // soft: last heartbeat's usage

  struct KvWaiter {
    std::weak_ptr<transport::Channel> channel;
    std::uint64_t request_id = 0;
    std::unique_ptr<asio::steady_timer> timer;
  };
  std::multimap<std::string, std::shared_ptr<KvWaiter>> kv_waiters_;

  // Heartbeat handling latency (agent send -> head handled), microseconds; a ring.
  std::vector<std::int64_t> heartbeat_latency_us_;
  std::size_t heartbeat_latency_next_ = 0;
  std::uint64_t num_heartbeats_ = 0;
  // Handlers hold a weak_ptr to this and return early once the Head is gone:
  // aborted operations still run their handlers after the destructor.
  std::shared_ptr<int> life_ = std::make_shared<int>(0);
};

// CLOCK_MONOTONIC in microseconds: comparable between processes of one host.
std::int64_t monotonic_us();

}  // namespace llmctl::control
