#include "runtime/control/head.h"

#include <time.h>

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "common/build_info.h"
#include "common/logging.h"
#include "runtime/control/gpu_indices.h"
#include "runtime/control/log_relay.h"
#include "runtime/transport/handshake.h"

namespace llmctl::control {
namespace {

constexpr std::size_t kLatencyRingSize = 1u << 16;

std::shared_ptr<spdlog::logger> head_log() { return logger("head"); }

std::string node_label(const ClusterState& s, const std::string& id) {
  auto it = s.nodes.find(id);
  return it == s.nodes.end() ? id : fmt::format("{} ({})", it->second.name, id);
}

}  // namespace

std::int64_t monotonic_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

Head::Head(asio::io_context& io, HeadOptions options, const Clock& clock)
    : io_(io),
      options_(std::move(options)),
      clock_(clock),
      acceptor_(io),
      tick_timer_(io),
      detector_(clock, std::chrono::milliseconds(options_.heartbeat_period_ms * options_.num_missed_heartbeats)) {
  channel_options_.max_frame_bytes = options_.max_frame_bytes;
  channel_options_.handshake_timeout_ms = options_.handshake_timeout_ms;
  channel_options_.idle_timeout_ms = options_.idle_timeout_ms;
  channel_options_.tls = options_.tls;
  if (options_.advertise_address.empty()) options_.advertise_address = options_.bind_address;
}

Head::~Head() { stop(); }

Result<std::uint16_t> Head::start() {
  started_ms_ = wall_time_ms();
  if (options_.durable) {
    auto log = StateLog::open(options_.state_dir, &state_, &recovery_);
    if (!log.is_ok()) return log.status().with_context("recovering the head's state");
    log_ = std::move(log).value();
    if (recovery_.had_snapshot || recovery_.num_records_replayed > 0) {
      head_log()->info("recovered {} nodes, {} KV keys, {} placement groups from {} ({} log records{})",
                  state_.nodes.size(), state_.kv.size(), state_.groups.size(), options_.state_dir,
                  recovery_.num_records_replayed,
                  recovery_.num_bytes_discarded ? fmt::format(", {} torn bytes cut", recovery_.num_bytes_discarded) : "");
    }
  }
  std::string hash = transport::hmac_sha256_hex(options_.token, "llmctl-token-hash");
  if (state_.token_hash != hash) {
    if (!state_.token_hash.empty()) head_log()->warn("the cluster token changed since the last run; agents need the new one");
    RETURN_IF_ERROR(commit(token_hash_record(hash)));
  }
  // Nodes that were Active when the head went away get time to re-attach
  // before they are declared Dead.
  auto grace = clock_.now() + std::chrono::milliseconds(
                                  std::max(options_.recovery_grace_ms, options_.heartbeat_period_ms * options_.num_missed_heartbeats));
  for (const auto& [id, n] : state_.nodes) {
    if (n.state == NodeState::kActive) detector_.watch_until(id, grace);
  }

  asio::error_code ec;
  auto address = asio::ip::make_address(options_.bind_address, ec);
  if (ec) return Status::invalid_argument(fmt::format("bind address \"{}\": {}", options_.bind_address, ec.message()));
  asio::ip::tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::already_exists(fmt::format("cannot listen on {}:{}: {}", options_.bind_address, options_.port, ec.message()));
  }
  std::uint16_t port = acceptor_.local_endpoint().port();
  head_log()->info("head listening on {}:{} (heartbeat {} ms, dead after {} ms)", options_.bind_address, port,
              options_.heartbeat_period_ms, detector_.timeout().count());
  accept_next();
  tick();
  return port;
}

void Head::stop() {
  if (stopped_) return;
  stopped_ = true;
  asio::error_code ignored;
  acceptor_.close(ignored);
  tick_timer_.cancel();
  auto channels = channels_;
  for (auto& [raw, ch] : channels) ch->close(Status::unavailable("the head is stopping"));
  for (auto& [key, w] : kv_waiters_) w->timer->cancel();
  kv_waiters_.clear();
}

void Head::accept_next() {
  acceptor_.async_accept([this, life = std::weak_ptr<int>(life_)](asio::error_code ec, asio::ip::tcp::socket socket) {
    if (life.expired() || stopped_) return;
    if (ec) {
      // EMFILE and friends: keep accepting, a little later.
      head_log()->warn("accept failed: {}", ec.message());
      auto retry = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(50));
      retry->async_wait([this, retry, life = std::weak_ptr<int>(life_)](asio::error_code) {
        if (!life.expired() && !stopped_) accept_next();
      });
      return;
    }
    transport::Channel::async_accept(std::move(socket), options_.token, channel_options_,
                                     [this, life = std::weak_ptr<int>(life_)](Result<std::shared_ptr<transport::Channel>> r) {
                                       if (life.expired() || stopped_) return;
                                       if (!r.is_ok()) {
                                         if (r.status().code() == StatusCode::kPermissionDenied) {
                                           head_log()->warn("refused connection: {}", r.status().message());
                                         } else {
                                           head_log()->info("dropped connection during handshake: {}", r.status().message());
                                         }
                                         return;
                                       }
                                       on_open(std::move(r).value());
                                     });
    accept_next();
  });
}

void Head::on_open(std::shared_ptr<transport::Channel> ch) {
  channels_[ch.get()] = ch;
  transport::Channel* raw = ch.get();
  std::weak_ptr<transport::Channel> weak = ch;
  ch->start(
      [this, weak, life = std::weak_ptr<int>(life_)](const transport::Message& m, std::uint64_t id) {
        if (life.expired()) return;
        if (auto c = weak.lock()) on_message(c, m, id);
      },
      [this, raw, life = std::weak_ptr<int>(life_)](const Status& why) {
        if (life.expired()) return;
        head_log()->debug("connection {} closed: {}", fmt::ptr(raw), why.message());
        on_close(raw);
      });
}

void Head::on_close(transport::Channel* raw) {
  if (stopped_) return;
  channels_.erase(raw);
  auto it = channel_nodes_.find(raw);
  if (it == channel_nodes_.end()) return;
  auto a = agent_channels_.find(it->second);
  if (a != agent_channels_.end() && a->second.get() == raw) {
    agent_channels_.erase(a);
    // Not Dead yet: the failure detector decides, so a head-side hiccup or a
    // quick agent reconnect does not flap the node.
    head_log()->info("agent of node {} disconnected", node_label(state_, it->second));
  }
  channel_nodes_.erase(it);
}

void Head::on_message(const std::shared_ptr<transport::Channel>& ch, const transport::Message& m, std::uint64_t id) {
  const std::string& t = m.type;
  if (id == 0) {
    if (t == "node.heartbeat") return on_heartbeat(ch.get(), m.body);
    if (t == "bundle.update") return on_bundle_update(ch.get(), m.body);
    head_log()->debug("ignoring push {} from {}", t, ch->remote_address());
    return;
  }
  if (t == "kv.wait") return handle_kv_wait(ch, id, m.body);
  if (t == "logs.search" && m.body.is_object()) {
    std::vector<LogTarget> targets;
    for (const auto& [node_id, n] : state_.nodes) {
      LogTarget target{n.node_id, n.name, n.address, n.state == NodeState::kActive, n.reason, nullptr};
      if (auto a = agent_channels_.find(node_id); a != agent_channels_.end()) target.channel = a->second;
      targets.push_back(std::move(target));
    }
    return relay_log_search(ch, id, m.body, std::move(targets), std::chrono::seconds(10),
                            options_.max_frame_bytes * 7 / 8);
  }
  Result<nlohmann::json> r = Status::unimplemented(fmt::format("unknown request type \"{}\"", t));
  if (!m.body.is_object()) {
    r = Status::invalid_argument(fmt::format("{}: body must be an object", t));
  } else if (t == "node.register") {
    r = handle_register(ch, m.body);
  } else if (t == "node.leave") {
    r = handle_leave(m.body);
  } else if (t == "cluster.status") {
    r = status_json();
  } else if (t == "stats.reset") {
    // Benchmarks measure a window that excludes their start-up.
    heartbeat_latency_us_.clear();
    heartbeat_latency_next_ = 0;
    num_heartbeats_ = 0;
    r = nlohmann::json::object();
  } else if (t.rfind("kv.", 0) == 0) {
    r = handle_kv(t, m.body);
  } else if (t == "placement.submit") {
    r = handle_submit(m.body);
  } else if (t == "placement.remove") {
    r = handle_remove(m.body);
  }
  ch->reply(id, std::move(r));
}

Status Head::commit(const nlohmann::json& record) {
  if (log_) {
    if (Status s = log_->append(record); !s.is_ok()) {
      head_log()->error("cannot persist cluster state: {}", s.message());
      return s;
    }
  }
  RETURN_IF_ERROR(state_.apply(record));
  if (log_ && log_->num_records_since_snapshot() >= options_.snapshot_every_records) {
    if (Status s = log_->snapshot(state_); !s.is_ok()) head_log()->error("snapshot failed: {}", s.message());
  }
  return Status::ok();
}

void Head::note_failure(const std::string& what) {
  head_log()->warn("{}", what);
  (void)commit(failure_record(wall_time_ms(), what));
}

Result<nlohmann::json> Head::handle_register(const std::shared_ptr<transport::Channel>& ch, const nlohmann::json& d) {
  NodeRecord n;
  n.node_id = d.value("node_id", "");
  if (n.node_id.empty()) return Status::invalid_argument("node.register: missing node_id");
  n.name = d.value("name", n.node_id);
  n.address = d.value("address", "");
  if (n.address.empty()) {
    std::string peer = ch->remote_address();
    n.address = peer.substr(0, peer.rfind(':'));
  }
  n.role = d.value("role", "worker");
  n.version = d.value("version", "");
  ASSIGN_OR_RETURN(n.resources, placement::resources_from_json(d.value("resources", nlohmann::json::object())));
  n.state = NodeState::kActive;
  auto old = state_.nodes.find(n.node_id);
  bool rejoin = old != state_.nodes.end();
  n.state_since_ms = rejoin && old->second.state == NodeState::kActive ? old->second.state_since_ms : wall_time_ms();
  if (!rejoin || node_to_json(old->second) != node_to_json(n)) RETURN_IF_ERROR(commit(node_record(n)));

  // A node has one agent connection; a newer one replaces a stale one.
  if (auto a = agent_channels_.find(n.node_id); a != agent_channels_.end() && a->second != ch) {
    channel_nodes_.erase(a->second.get());
    a->second->close(Status::already_exists("replaced by a newer connection of the same node"));
  }
  agent_channels_[n.node_id] = ch;
  channel_nodes_[ch.get()] = n.node_id;
  detector_.heartbeat(n.node_id);
  if (d.contains("usage")) usage_[n.node_id] = d["usage"];
  head_log()->info("node {} {} at {} ({}, {})", node_label(state_, n.node_id), rejoin ? "re-attached" : "joined", n.address,
              n.role, placement::format_resources(n.resources));

  // Bundles this node should run but its agent does not know (it restarted): launch again.
  std::set<std::pair<std::string, std::size_t>> running;
  for (const auto& b : d.value("bundles", nlohmann::json::array())) {
    if (b.is_object()) running.emplace(b.value("group_id", ""), b.value("index", std::size_t{0}));
  }
  for (auto& [gid, g] : state_.groups) {
    for (std::size_t i = 0; i < g.bundles.size(); ++i) {
      bool ours = g.state == "placed" && g.bundles[i].node_id == n.node_id;
      if (ours && !running.count({gid, i}) &&
          (g.bundles[i].state == "starting" || g.bundles[i].state == "running" || g.bundles[i].state == "lost")) {
        launch_bundle(g, i);
      }
      // It was declared Dead while its processes ran on (a partition): they
      // have been placed elsewhere since, so they stop here.
      if (!ours && running.count({gid, i})) {
        head_log()->info("node {} still runs bundle {}[{}], which moved; stopping it there", node_label(state_, n.node_id),
                         gid, i);
        ch->push("bundle.kill", {{"group_id", gid}, {"index", i}});
      }
    }
  }
  nlohmann::json reply = {{"heartbeat_period_ms", options_.heartbeat_period_ms}, {"node_id", n.node_id}};
  // Let the reply go out before any launch it caused... (order on one channel is kept anyway)
  asio::post(io_, [this, life = std::weak_ptr<int>(life_)] {
    if (!life.expired()) place_pending();
  });
  return reply;
}

Result<nlohmann::json> Head::handle_leave(const nlohmann::json& d) {
  std::string id = d.value("node_id", "");
  auto it = state_.nodes.find(id);
  if (it == state_.nodes.end()) return Status::not_found(fmt::format("node {} is not part of this cluster", id));
  std::string reason = d.value("reason", "stopped");
  if (it->second.state == NodeState::kActive) mark_dead(id, reason, /*is_failure=*/false);
  return nlohmann::json::object();
}

void Head::on_heartbeat(transport::Channel* raw, const nlohmann::json& d) {
  auto it = channel_nodes_.find(raw);
  if (it == channel_nodes_.end()) return;  // not registered (or replaced): ignore
  const std::string& id = it->second;
  auto n = state_.nodes.find(id);
  if (n == state_.nodes.end() || n->second.state != NodeState::kActive) return;
  detector_.heartbeat(id);
  ++num_heartbeats_;
  if (d.is_object()) {
    if (auto u = d.find("usage"); u != d.end()) usage_[id] = *u;
    if (auto s = d.find("sent_us"); s != d.end() && s->is_number_integer()) {
      std::int64_t latency = monotonic_us() - s->get<std::int64_t>();
      if (heartbeat_latency_us_.size() < kLatencyRingSize) {
        heartbeat_latency_us_.push_back(latency);
      } else {
        heartbeat_latency_us_[heartbeat_latency_next_++ % kLatencyRingSize] = latency;
      }
    }
  }
}

void Head::tick() {
  if (stopped_) return;
  auto tick_period = std::chrono::milliseconds(std::max(5, options_.heartbeat_period_ms / 4));
  auto now = std::chrono::steady_clock::now();
  // A tick far behind schedule means this thread was busy (a burst of fsync'd
  // registrations, a huge status reply): the heartbeats that arrived meanwhile
  // wait unread in the sockets. Read them before judging anyone, once.
  bool stalled = next_tick_due_.time_since_epoch().count() != 0 &&
                 now - next_tick_due_ > std::chrono::milliseconds(options_.heartbeat_period_ms) && !tick_deferred_;
  tick_deferred_ = stalled;
  if (stalled) {
    next_tick_due_ = now + std::chrono::milliseconds(1);
    tick_timer_.expires_after(std::chrono::milliseconds(1));
    tick_timer_.async_wait([this, life = std::weak_ptr<int>(life_)](asio::error_code ec) {
      if (!ec && !life.expired()) tick();
    });
    return;
  }
  for (const std::string& id : detector_.expired()) {
    auto it = state_.nodes.find(id);
    if (it == state_.nodes.end() || it->second.state != NodeState::kActive) continue;
    mark_dead(id, fmt::format("missed heartbeats for {} ms", detector_.timeout().count()), /*is_failure=*/true);
  }
  // Four checks per heartbeat period bound detection at timeout + period/4.
  next_tick_due_ = now + tick_period;
  tick_timer_.expires_after(tick_period);
  tick_timer_.async_wait([this, life = std::weak_ptr<int>(life_)](asio::error_code ec) {
    if (!ec && !life.expired()) tick();
  });
}

void Head::mark_dead(const std::string& id, const std::string& reason, bool is_failure) {
  NodeRecord n = state_.nodes.at(id);
  n.state = NodeState::kDead;
  n.reason = reason;
  n.state_since_ms = wall_time_ms();
  (void)commit(node_record(n));
  detector_.forget(id);
  usage_.erase(id);
  if (is_failure) {
    note_failure(fmt::format("node {} at {} is Dead: {}", node_label(state_, id), n.address, reason));
  } else {
    head_log()->info("node {} left the cluster: {}", node_label(state_, id), reason);
  }
  // Its bundles go back to pending (the rest of their group stays put) and
  // are placed again as soon as resources allow.
  bool any_lost = false;
  for (auto& [gid, g] : state_.groups) {
    if (g.state != "placed") continue;
    GroupRecord updated = g;
    bool changed = false;
    for (std::size_t i = 0; i < updated.bundles.size(); ++i) {
      BundleRecord& b = updated.bundles[i];
      if (b.node_id != id || b.state == "exited") continue;
      head_log()->info("bundle {}[{}] ({}) lost with node {}; placing it again", gid, i, g.name, node_label(state_, id));
      b.node_id.clear();
      b.state = "pending";
      b.pid = 0;
      b.gpu_indices.clear();
      changed = true;
    }
    if (changed) {
      updated.reason = fmt::format("bundle(s) lost with node {}", node_label(state_, id));
      (void)commit(group_record(updated));
      any_lost = true;
    }
  }
  if (any_lost) {
    asio::post(io_, [this, life = std::weak_ptr<int>(life_)] {
      if (!life.expired()) place_pending();
    });
  }
  if (auto a = agent_channels_.find(id); a != agent_channels_.end()) {
    auto ch = a->second;
    agent_channels_.erase(a);
    channel_nodes_.erase(ch.get());
    // A node declared Dead must register again to come back.
    if (reason != "stopped") ch->close(Status::unavailable("declared Dead"));
  }
}

Result<nlohmann::json> Head::handle_kv(const std::string& t, const nlohmann::json& d) {
  if (t == "kv.put") {
    std::string key = d.value("key", "");
    if (key.empty()) return Status::invalid_argument("kv.put: empty key");
    if (!d.contains("value") || !d["value"].is_string()) return Status::invalid_argument("kv.put: value must be a string");
    if (!d.value("overwrite", true) && state_.kv.count(key)) {
      return Status::already_exists(fmt::format("key \"{}\" exists", key));
    }
    std::string value = d["value"].get<std::string>();
    RETURN_IF_ERROR(commit(kv_put_record(key, value)));
    auto range = kv_waiters_.equal_range(key);
    std::vector<std::shared_ptr<KvWaiter>> woken;
    for (auto it = range.first; it != range.second; ++it) woken.push_back(it->second);
    kv_waiters_.erase(range.first, range.second);
    for (auto& w : woken) {
      w->timer->cancel();
      if (auto ch = w->channel.lock()) ch->reply(w->request_id, nlohmann::json{{"found", true}, {"value", value}});
    }
    return nlohmann::json::object();
  }
  if (t == "kv.get") {
    auto it = state_.kv.find(d.value("key", ""));
    if (it == state_.kv.end()) return nlohmann::json{{"found", false}};
    return nlohmann::json{{"found", true}, {"value", it->second}};
  }
  if (t == "kv.delete") {
    std::string prefix = d.value("prefix", "");
    std::size_t n = state_.keys_with_prefix(prefix).size();
    if (n > 0) RETURN_IF_ERROR(commit(kv_delete_record(prefix)));
    return nlohmann::json{{"num_deleted", n}};
  }
  if (t == "kv.list") return nlohmann::json{{"keys", state_.keys_with_prefix(d.value("prefix", ""))}};
  return Status::unimplemented(fmt::format("unknown request type \"{}\"", t));
}

void Head::handle_kv_wait(const std::shared_ptr<transport::Channel>& ch, std::uint64_t id, const nlohmann::json& d) {
  std::string key = d.is_object() ? d.value("key", "") : "";
  if (key.empty()) return ch->reply(id, Status::invalid_argument("kv.wait: empty key"));
  if (auto it = state_.kv.find(key); it != state_.kv.end()) {
    return ch->reply(id, nlohmann::json{{"found", true}, {"value", it->second}});
  }
  int timeout_ms = d.value("timeout_ms", 10000);
  auto w = std::make_shared<KvWaiter>();
  w->channel = ch;
  w->request_id = id;
  w->timer = std::make_unique<asio::steady_timer>(io_, std::chrono::milliseconds(timeout_ms));
  auto it = kv_waiters_.emplace(key, w);
  (void)it;
  w->timer->async_wait([this, key, w, timeout_ms, life = std::weak_ptr<int>(life_)](asio::error_code ec) {
    if (ec || life.expired()) return;
    auto range = kv_waiters_.equal_range(key);
    for (auto i = range.first; i != range.second; ++i) {
      if (i->second == w) {
        kv_waiters_.erase(i);
        break;
      }
    }
    if (auto c = w->channel.lock()) {
      c->reply(w->request_id,
               Status::deadline_exceeded(fmt::format("key \"{}\" did not appear within {} ms", key, timeout_ms)));
    }
  });
}

Result<nlohmann::json> Head::handle_submit(const nlohmann::json& d) {
  GroupRecord g;
  g.group_id = fmt::format("g{}", state_.next_group_seq);
  g.name = d.value("name", g.group_id);
  auto strategy = placement::parse_strategy(d.value("strategy", "PACK"));
  if (!strategy.is_ok()) return strategy.status();
  g.strategy = *strategy;
  g.restart = d.value("restart", "never");
  if (g.restart != "never" && g.restart != "on_failure" && g.restart != "always") {
    return Status::invalid_argument(fmt::format("restart policy \"{}\" (never, on_failure, always)", g.restart));
  }
  g.max_restarts = d.value("max_restarts", 3);
  if (d.contains("env") && d["env"].is_object()) {
    for (auto it = d["env"].begin(); it != d["env"].end(); ++it) {
      if (it->is_string()) g.env[it.key()] = it->get<std::string>();
    }
  }
  g.created_ms = wall_time_ms();
  auto bundles = d.value("bundles", nlohmann::json::array());
  if (!bundles.is_array() || bundles.empty()) return Status::invalid_argument("placement.submit: no bundles");
  for (const auto& jb : bundles) {
    if (!jb.is_object()) return Status::invalid_argument("placement.submit: a bundle is not an object");
    BundleRecord b;
    ASSIGN_OR_RETURN(b.resources, placement::resources_from_json(jb.value("resources", nlohmann::json::object())));
    if (jb.contains("command") && jb["command"].is_array()) {
      for (const auto& a : jb["command"]) {
        if (!a.is_string()) return Status::invalid_argument("placement.submit: command arguments must be strings");
        b.command.push_back(a.get<std::string>());
      }
    }
    if (auto pin = jb.find("pinned_node"); pin != jb.end() && !pin->is_null()) {
      if (!pin->is_string()) return Status::invalid_argument("placement.submit: pinned_node must be a node id or name");
      b.pinned_node = pin->get<std::string>();
    }
    // Whole GPUs only: each gets an index of its own (CUDA_VISIBLE_DEVICES).
    if (auto gpus = b.resources.find("GPU"); gpus != b.resources.end()) {
      if (auto whole = pick_gpu_indices(gpus->second, {}, gpus->second); !whole.is_ok() &&
                                                                          whole.status().code() == StatusCode::kInvalidArgument) {
        return Status::invalid_argument(
            fmt::format("placement.submit: bundle {} asks for {}", g.bundles.size(), whole.status().message()));
      }
    }
    g.bundles.push_back(std::move(b));
  }
  try_place(g);
  RETURN_IF_ERROR(commit(group_record(g)));
  if (g.state == "placed") {
    for (std::size_t i = 0; i < g.bundles.size(); ++i) launch_bundle(g, i);
  } else {
    head_log()->info("placement group {} ({}) pending: {}", g.group_id, g.name, g.reason);
  }
  return group_to_json(state_.groups.at(g.group_id));
}

Result<nlohmann::json> Head::handle_remove(const nlohmann::json& d) {
  std::string gid = d.value("group_id", "");
  auto it = state_.groups.find(gid);
  if (it == state_.groups.end()) return Status::not_found(fmt::format("no placement group {}", gid));
  GroupRecord g = it->second;
  for (std::size_t i = 0; i < g.bundles.size(); ++i) {
    if (g.state != "placed") break;
    if (auto a = agent_channels_.find(g.bundles[i].node_id); a != agent_channels_.end()) {
      a->second->push("bundle.kill", {{"group_id", gid}, {"index", i}});
    }
  }
  g.state = "removed";
  RETURN_IF_ERROR(commit(group_record(g)));
  asio::post(io_, [this, life = std::weak_ptr<int>(life_)] {
    if (!life.expired()) place_pending();
  });
  return nlohmann::json::object();
}

std::vector<placement::NodeCapacity> Head::placeable_nodes() const {
  std::vector<placement::NodeCapacity> nodes;
  for (const auto& [id, n] : state_.nodes) {
    if (n.state != NodeState::kActive || !agent_channels_.count(id)) continue;
    placement::NodeCapacity c{id, n.resources, n.resources, n.name};
    placement::subtract_from(c.available, state_.used_on(id));
    nodes.push_back(std::move(c));
  }
  return nodes;
}

void Head::try_place(GroupRecord& g) {
  std::vector<placement::NodeCapacity> nodes = placeable_nodes();
  std::vector<ResourceSet> requests;
  std::vector<std::string> pins;
  for (const auto& b : g.bundles) {
    requests.push_back(b.resources);
    pins.push_back(b.pinned_node);
  }
  auto decision = placement::place(requests, g.strategy, nodes, pins);
  if (!decision.placed) {
    g.state = "pending";
    g.reason = decision.reason;
    return;
  }
  std::vector<std::size_t> all;
  for (std::size_t i = 0; i < g.bundles.size(); ++i) {
    g.bundles[i].node_id = decision.node_ids[i];
    all.push_back(i);
  }
  if (Status s = assign_gpu_indices(g, all); !s.is_ok()) {
    for (auto& b : g.bundles) {
      b.node_id.clear();
      b.gpu_indices.clear();
    }
    g.state = "pending";
    g.reason = s.message();
    return;
  }
  g.state = "placed";
  g.reason.clear();
  for (auto& b : g.bundles) b.state = b.command.empty() ? "reserved" : "starting";
  head_log()->info("placement group {} ({}) placed: {}", g.group_id, g.name, fmt::join(decision.node_ids, ", "));
}

bool Head::try_replace(GroupRecord& g) {
  std::vector<placement::NodeCapacity> nodes = placeable_nodes();
  std::vector<ResourceSet> requests;
  std::vector<std::string> current, pins;
  for (const auto& b : g.bundles) {
    requests.push_back(b.resources);
    current.push_back(b.state == "pending" ? std::string() : b.node_id);
    pins.push_back(b.pinned_node);
  }
  auto decision = placement::place_missing(requests, g.strategy, nodes, current, pins);
  if (!decision.placed) {
    g.reason = decision.reason;
    return false;
  }
  std::vector<std::size_t> missing;
  for (std::size_t i = 0; i < g.bundles.size(); ++i) {
    if (!current[i].empty()) continue;
    g.bundles[i].node_id = decision.node_ids[i];
    missing.push_back(i);
  }
  if (Status s = assign_gpu_indices(g, missing); !s.is_ok()) {
    for (std::size_t i : missing) {
      g.bundles[i].node_id.clear();
      g.bundles[i].gpu_indices.clear();
    }
    g.reason = s.message();
    return false;
  }
  for (std::size_t i : missing) {
    g.bundles[i].state = g.bundles[i].command.empty() ? "reserved" : "starting";
    head_log()->info("placement group {} ({}) bundle {} placed again on {}", g.group_id, g.name, i,
                     node_label(state_, decision.node_ids[i]));
  }
  g.reason.clear();
  return true;
}

bool Head::has_pending_bundles(const GroupRecord& g) {
  return g.state == "placed" &&
         std::any_of(g.bundles.begin(), g.bundles.end(), [](const BundleRecord& b) { return b.state == "pending"; });
}

Status Head::assign_gpu_indices(GroupRecord& g, const std::vector<std::size_t>& which) const {
  for (std::size_t i : which) {
    BundleRecord& b = g.bundles[i];
    b.gpu_indices.clear();
    auto want = b.resources.find("GPU");
    if (want == b.resources.end() || want->second <= 0) continue;
    auto node = state_.nodes.find(b.node_id);
    double total = 0;
    if (node != state_.nodes.end()) {
      if (auto t = node->second.resources.find("GPU"); t != node->second.resources.end()) total = t->second;
    }
    std::set<int> held = state_.gpu_indices_held(b.node_id, g.group_id);
    for (std::size_t j = 0; j < g.bundles.size(); ++j) {
      if (j != i && g.bundles[j].node_id == b.node_id) held.insert(g.bundles[j].gpu_indices.begin(), g.bundles[j].gpu_indices.end());
    }
    auto picked = pick_gpu_indices(total, held, want->second);
    if (!picked.is_ok()) {
      return Status(picked.status().code(), fmt::format("bundle {} on node {}: {}", i, node_label(state_, b.node_id),
                                                        picked.status().message()));
    }
    b.gpu_indices = std::move(picked).value();
  }
  return Status::ok();
}

void Head::place_pending() {
  if (stopped_) return;
  // Groups that lost bundles with a dead node first: they already hold the rest.
  std::vector<std::string> partial;
  for (const auto& [id, g] : state_.groups) {
    if (has_pending_bundles(g)) partial.push_back(id);
  }
  for (const auto& id : partial) {
    GroupRecord g = state_.groups.at(id);
    std::string old_reason = g.reason;
    std::vector<bool> was_pending;
    for (const auto& b : g.bundles) was_pending.push_back(b.state == "pending");
    bool placed = try_replace(g);
    if (placed || g.reason != old_reason) {
      if (!commit(group_record(g)).is_ok()) continue;
    }
    if (placed) {
      for (std::size_t i = 0; i < g.bundles.size(); ++i) {
        if (was_pending[i]) launch_bundle(g, i);
      }
    }
  }
  std::vector<std::string> pending;
  for (const auto& [id, g] : state_.groups) {
    if (g.state == "pending") pending.push_back(id);
  }
  for (const auto& id : pending) {
    GroupRecord g = state_.groups.at(id);
    std::string old_reason = g.reason;
    try_place(g);
    if (g.state == "placed" || g.reason != old_reason) {
      if (!commit(group_record(g)).is_ok()) continue;
    }
    if (g.state == "placed") {
      for (std::size_t i = 0; i < g.bundles.size(); ++i) launch_bundle(g, i);
    }
  }
}

void Head::launch_bundle(const GroupRecord& g, std::size_t i) {
  const BundleRecord& b = g.bundles[i];
  if (b.command.empty()) return;  // a reservation: nothing runs
  auto a = agent_channels_.find(b.node_id);
  if (a == agent_channels_.end()) return;  // launched when the agent re-attaches
  nlohmann::json env = g.env;
  env["LLMCTL_GROUP_ID"] = g.group_id;
  env["LLMCTL_BUNDLE_INDEX"] = std::to_string(i);
  env["LLMCTL_NUM_BUNDLES"] = std::to_string(g.bundles.size());
  nlohmann::json launch = {{"group_id", g.group_id},
                           {"index", i},
                           {"command", b.command},
                           {"env", env},
                           {"restart", g.restart},
                           {"max_restarts", g.max_restarts}};
  // Only GPU bundles: the agent then sets CUDA_VISIBLE_DEVICES to these.
  if (auto gpus = b.resources.find("GPU"); gpus != b.resources.end() && gpus->second > 0) {
    launch["gpu_indices"] = b.gpu_indices;
  }
  a->second->push("bundle.launch", launch);
}

void Head::on_bundle_update(transport::Channel* raw, const nlohmann::json& d) {
  if (!d.is_object() || !channel_nodes_.count(raw)) return;
  auto it = state_.groups.find(d.value("group_id", ""));
  if (it == state_.groups.end()) return;
  GroupRecord g = it->second;
  std::size_t i = d.value("index", std::size_t{0});
  if (i >= g.bundles.size()) return;
  BundleRecord& b = g.bundles[i];
  // A late report from a node the bundle has moved away from.
  if (b.node_id != channel_nodes_.at(raw)) return;
  b.state = d.value("state", b.state);
  b.exit_code = d.value("exit_code", b.exit_code);
  b.num_restarts = d.value("num_restarts", b.num_restarts);
  b.pid = d.value("pid", b.pid);
  (void)commit(group_record(g));
  if (b.state == "failed" || b.state == "restarting") {
    note_failure(fmt::format("bundle {}[{}] ({}) on node {} exited with code {}{}", g.group_id, i, g.name,
                             node_label(state_, b.node_id), b.exit_code,
                             b.state == "restarting" ? fmt::format(", restart {}", b.num_restarts) : ""));
  }
}

nlohmann::json Head::status_json() const {
  nlohmann::json j;
  std::int64_t now = wall_time_ms();
  j["now_ms"] = now;
  j["head"] = {{"address", fmt::format("{}:{}", options_.advertise_address,
                                       acceptor_.is_open() ? acceptor_.local_endpoint().port() : options_.port)},
               {"version", std::string(build_info().version)},
               {"started_ms", started_ms_},
               {"heartbeat_period_ms", options_.heartbeat_period_ms},
               {"dead_after_ms", detector_.timeout().count()}};
  ResourceSet total, used;
  j["nodes"] = nlohmann::json::array();
  for (const auto& [id, n] : state_.nodes) {
    nlohmann::json jn = node_to_json(n);
    ResourceSet u = state_.used_on(id);
    jn["used"] = placement::resources_to_json(u);
    auto age = detector_.since_last_heartbeat(id);
    jn["heartbeat_age_ms"] = age ? nlohmann::json(age->count()) : nlohmann::json();
    jn["connected"] = agent_channels_.count(id) > 0;
    if (auto us = usage_.find(id); us != usage_.end()) jn["usage"] = us->second;
    if (n.state == NodeState::kActive) {
      placement::add_to(total, n.resources);
      placement::add_to(used, u);
    }
    j["nodes"].push_back(std::move(jn));
  }
  j["resources"] = {{"total", placement::resources_to_json(total)}, {"used", placement::resources_to_json(used)}};
  j["groups"] = nlohmann::json::array();
  j["pending"] = nlohmann::json::array();
  for (const auto& [id, g] : state_.groups) {
    j["groups"].push_back(group_to_json(g));
    if (g.state == "pending" || has_pending_bundles(g)) {
      nlohmann::json demands = nlohmann::json::array();
      for (const auto& b : g.bundles) {
        if (g.state == "pending" || b.state == "pending") demands.push_back(placement::resources_to_json(b.resources));
      }
      j["pending"].push_back({{"group_id", id},
                              {"name", g.name},
                              {"strategy", placement::strategy_name(g.strategy)},
                              {"bundles", demands},
                              {"reason", g.reason}});
    }
  }
  j["failures"] = nlohmann::json::array();
  for (const auto& f : state_.failures) j["failures"].push_back({{"time_ms", f.time_ms}, {"what", f.what}});
  j["num_kv_keys"] = state_.kv.size();

  std::vector<std::int64_t> lat = heartbeat_latency_us_;
  nlohmann::json stats = {{"num_heartbeats", num_heartbeats_}, {"num_connections", channels_.size()}};
  if (!lat.empty()) {
    std::sort(lat.begin(), lat.end());
    auto pct = [&](double p) { return lat[std::min(lat.size() - 1, static_cast<std::size_t>(p * static_cast<double>(lat.size())))]; };
    stats["heartbeat_latency_us"] = {{"p50", pct(0.50)}, {"p99", pct(0.99)}, {"max", lat.back()}, {"samples", lat.size()}};
  }
  j["stats"] = stats;
  return j;
}

}  // namespace llmctl::control
