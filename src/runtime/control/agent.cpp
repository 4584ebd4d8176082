#include "runtime/control/agent.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "common/build_info.h"
#include "common/logging.h"
#include "runtime/control/log_relay.h"
#include "runtime/control/head.h"
#include "runtime/transport/handshake.h"

namespace llmctl::control {
namespace {

std::shared_ptr<spdlog::logger> agent_log() { return logger("agent"); }

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

}  // namespace

Result<std::string> load_or_create_node_id(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::io_error(fmt::format("creating {}: {}", dir, ec.message()));
  std::string path = dir + "/node_id";
  {
    std::ifstream in(path);
    std::string id;
    if (in >> id && !id.empty()) return id;
  }
  std::string id = transport::random_hex(8);
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << id << "\n";
    if (!out) return Status::io_error(fmt::format("writing {}", tmp));
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::io_error(fmt::format("renaming {}: {}", tmp, ec.message()));
  return id;
}

Agent::Agent(asio::io_context& io, AgentOptions options)
    : io_(io),
      options_(std::move(options)),
      reconnect_timer_(io),
      heartbeat_timer_(io),
      rng_(std::random_device{}()) {
  if (options_.node_name.empty()) options_.node_name = host_name();
}

Agent::~Agent() {
  reconnect_timer_.cancel();
  heartbeat_timer_.cancel();
  if (channel_) channel_->close(Status::unavailable("agent stopping"));
}

Status Agent::start() {
  ASSIGN_OR_RETURN(node_id_, load_or_create_node_id(options_.state_dir));
  supervisor_ = std::make_unique<ProcessSupervisor>(io_, options_.state_dir + "/bundles",
                                                    [this](const BundleProcess& p) { report(p); });
  agent_log()->info("node {} ({}) joining head {}:{}", options_.node_name, node_id_, options_.head_host,
                    options_.head_port);
  connect();
  return Status::ok();
}

void Agent::connect() {
  if (leaving_) return;
  transport::ChannelOptions co;
  co.handshake_timeout_ms = options_.connect_timeout_ms;
  co.max_frame_bytes = options_.max_frame_bytes;
  co.tls = options_.tls;
  transport::Channel::async_connect(io_, options_.head_host, options_.head_port, options_.token, co,
                                    [this](Result<std::shared_ptr<transport::Channel>> r) {
                                      if (leaving_) {
                                        if (r.is_ok()) r.value()->close(Status::unavailable("agent leaving"));
                                        return;
                                      }
                                      if (!r.is_ok()) {
                                        // A wrong token will not fix itself, but the operator may
                                        // restart the head with this token; keep trying, loudly.
                                        auto level = r.status().code() == StatusCode::kPermissionDenied
                                                         ? spdlog::level::err
                                                         : spdlog::level::debug;
                                        agent_log()->log(level, "cannot reach the head: {}", r.status().message());
                                        return schedule_reconnect();
                                      }
                                      on_open(std::move(r).value());
                                    });
}

void Agent::schedule_reconnect() {
  if (leaving_) return;
  backoff_ms_ = backoff_ms_ == 0 ? options_.min_backoff_ms : std::min(options_.max_backoff_ms, backoff_ms_ * 2);
  // Jitter spreads thousands of agents reconnecting after a head restart.
  std::uniform_int_distribution<int> jitter(0, backoff_ms_ / 4);
  reconnect_timer_.expires_after(std::chrono::milliseconds(backoff_ms_ + jitter(rng_)));
  reconnect_timer_.async_wait([this](asio::error_code ec) {
    if (!ec) connect();
  });
}

void Agent::on_open(std::shared_ptr<transport::Channel> ch) {
  channel_ = ch;
  transport::Channel* raw = ch.get();
  ch->start([this](const transport::Message& m, std::uint64_t id) { on_message(m, id); },
            [this, raw](const Status& why) {
              if (channel_.get() != raw) return;
              bool was = registered_;
              registered_ = false;
              channel_.reset();
              heartbeat_timer_.cancel();
              if (was) agent_log()->warn("lost the head: {}", why.message());
              schedule_reconnect();
            });
  nlohmann::json bundles = nlohmann::json::array();
  for (const auto& p : supervisor_->list()) {
    if (p.pid > 0) bundles.push_back(p.to_json());
  }
  nlohmann::json reg = {{"node_id", node_id_},
                        {"name", options_.node_name},
                        {"address", options_.node_address},
                        {"role", options_.role},
                        {"version", std::string(build_info().version)},
                        {"resources", placement::resources_to_json(options_.resources)},
                        {"usage", sampler_.sample()},
                        {"bundles", bundles}};
  ch->request("node.register", reg, std::chrono::milliseconds(options_.connect_timeout_ms),
              [this, raw](Result<nlohmann::json> r) {
                if (channel_.get() != raw) return;
                if (!r.is_ok()) {
                  agent_log()->warn("registration refused: {}", r.status().message());
                  channel_->close(r.status());
                  return;
                }
                registered_ = true;
                backoff_ms_ = 0;
                heartbeat_period_ms_ = std::max(10, r->value("heartbeat_period_ms", 200));
                agent_log()->info("registered with the head {} as node {}", channel_->remote_address(), node_id_);
                // Bundle states may have changed while the head was away.
                for (const auto& p : supervisor_->list()) report(p);
                heartbeat();
              });
}

void Agent::heartbeat() {
  if (!registered_ || !channel_) return;
  channel_->push("node.heartbeat", {{"usage", sampler_.sample()}, {"sent_us", monotonic_us()}});
  heartbeat_timer_.expires_after(std::chrono::milliseconds(heartbeat_period_ms_));
  heartbeat_timer_.async_wait([this](asio::error_code ec) {
    if (!ec) heartbeat();
  });
}

void Agent::on_message(const transport::Message& m, std::uint64_t id) {
  if (m.type == "logs.search" && id > 0 && channel_ && m.body.is_object()) {
    // The node's state dir is the agent dir's parent (NodePaths): logs/ and agent/bundles/ both.
    return answer_log_search(io_, channel_, id, m.body,
                             std::filesystem::path(options_.state_dir).parent_path().string(), options_.node_name,
                             options_.max_frame_bytes * 7 / 8);
  }
  if (m.type == "bundle.launch" && m.body.is_object()) {
    BundleSpec spec;
    spec.group_id = m.body.value("group_id", "");
    spec.index = m.body.value("index", std::size_t{0});
    spec.command = m.body.value("command", std::vector<std::string>{});
    spec.env = m.body.value("env", std::map<std::string, std::string>{});
    spec.restart = m.body.value("restart", "never");
    spec.max_restarts = m.body.value("max_restarts", 3);
    if (auto gpus = m.body.find("gpu_indices"); gpus != m.body.end() && gpus->is_array()) {
      spec.gpu_indices = gpus->get<std::vector<int>>();
    }
    if (Status s = supervisor_->launch(spec); !s.is_ok()) {
      agent_log()->error("cannot launch bundle {}[{}]: {}", spec.group_id, spec.index, s.message());
    }
  } else if (m.type == "bundle.kill" && m.body.is_object()) {
    supervisor_->stop({m.body.value("group_id", ""), m.body.value("index", std::size_t{0})}, 5000);
  } else {
    agent_log()->debug("ignoring {} from the head", m.type);
  }
  if (id > 0 && channel_) channel_->reply(id, Status::unimplemented(fmt::format("agent has no request {}", m.type)));
}

void Agent::report(const BundleProcess& p) {
  if (registered_ && channel_) channel_->push("bundle.update", p.to_json());
}

void Agent::leave(int timeout_ms, int grace_ms, std::function<void()> done) {
  auto finish = [this, grace_ms, done] {
    leaving_ = true;
    reconnect_timer_.cancel();
    heartbeat_timer_.cancel();
    if (supervisor_) supervisor_->stop_all(grace_ms);
    if (channel_) channel_->close(Status::unavailable("agent stopped"));
    channel_.reset();
    agent_log()->info("node {} left the cluster", node_id_);
    asio::post(io_, done);
  };
  if (!registered_ || !channel_) {
    finish();
    return;
  }
  leaving_ = true;
  heartbeat_timer_.cancel();
  channel_->request("node.leave", {{"node_id", node_id_}, {"reason", "stopped"}}, std::chrono::milliseconds(timeout_ms),
                    [finish](Result<nlohmann::json> r) {
                      if (!r.is_ok()) agent_log()->warn("could not tell the head this node leaves: {}", r.status().message());
                      finish();
                    });
}

}  // namespace llmctl::control
