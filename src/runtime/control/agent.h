// Agent: the per-node daemon. Keeps one Channel to the head: registers with
// its stable node id (kept in <state_dir>/node_id, so a restarted agent
// rejoins as the same node), pushes a heartbeat with resource use every
// period the head asks for, launches and supervises the bundles the head
// places here, and reconnects with exponential backoff (100 ms .. 1 s, with
// jitter) whenever the head is away — running bundles are left alone.
//
// Threading: single-threaded on the io_context passed in.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include <asio.hpp>

#include "common/status.h"
#include "runtime/control/process_supervisor.h"
#include "runtime/control/resource_sampler.h"
#include "runtime/placement/resource_set.h"
#include "runtime/transport/channel.h"
#include "runtime/transport/tls_context.h"

namespace llmctl::control {

struct AgentOptions {
  std::string state_dir;  // this node's folder: node_id, bundle logs
  std::string head_host;
  std::uint16_t head_port = 6379;
  std::string token;
  std::string node_name;     // default: hostname
  std::string node_address;  // advertised; empty: what the head sees
  std::string role = "worker";
  placement::ResourceSet resources;
  int min_backoff_ms = 100;
  int max_backoff_ms = 1000;
  int connect_timeout_ms = 3000;
  std::size_t max_frame_bytes = 1u << 20;
  transport::TlsContext tls;  // set: TLS to the head (a client context trusting its certificate)
};

class Agent {
 public:
  Agent(asio::io_context& io, AgentOptions options);
  ~Agent();

  // Loads or creates the node id and starts connecting. Never fails because
  // the head is away; only for a state dir it cannot use.
  Status start();
  // Graceful exit: tells the head this node leaves (bounded by timeout_ms),
  // stops bundles, then calls `done` on the io_context.
  void leave(int timeout_ms, int grace_ms, std::function<void()> done);

  const std::string& node_id() const { return node_id_; }
  bool connected() const { return registered_; }

 private:
  void connect();
  void schedule_reconnect();
  void on_open(std::shared_ptr<transport::Channel> channel);
  void on_message(const transport::Message& m, std::uint64_t id);
  void heartbeat();
  void report(const BundleProcess& p);

  asio::io_context& io_;
  AgentOptions options_;
  std::string node_id_;
  std::shared_ptr<transport::Channel> channel_;
  bool registered_ = false;
  bool leaving_ = false;
  int backoff_ms_ = 0;
  int heartbeat_period_ms_ = 200;
  asio::steady_timer reconnect_timer_;
  asio::steady_timer heartbeat_timer_;
  ResourceSampler sampler_;
  std::unique_ptr<ProcessSupervisor> supervisor_;
  std::mt19937 rng_;
};

// Reads <dir>/node_id, or creates it with a fresh random id.
Result<std::string> load_or_create_node_id(const std::string& dir);

}  // namespace llmctl::control
