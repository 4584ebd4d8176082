// llmctl start: start the head daemon (--head) or an agent that joins (--address) (issue #8).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/cli_context.h"
#include "common/gpu_inventory.h"
#include "common/state_dir.h"
#include "runtime/control/agent.h"
#include "runtime/control/control_client.h"
#include "runtime/control/daemon.h"
#include "runtime/control/resource_sampler.h"
#include "runtime/placement/resource_set.h"

namespace llmctl::cli {
namespace {

using namespace std::chrono_literals;

struct StartOptions {
  bool head = false;
  std::string address, token, node_ip, node_name, resources, config, tls_cert, tls_key, tls_ca;
  int port = 6379, dashboard_port = 8265, num_gpus = -1, num_cpus = -1;
  int heartbeat_period_ms = 200, num_missed_heartbeats = 5;
  bool block = false;
};

volatile sig_atomic_t g_stop_requested = 0;

std::string absolute_path(const std::string& path) {
  if (path.empty()) return path;
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.string();
}

std::string tail_of(const std::string& path, std::size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return s.size() > max_bytes ? s.substr(s.size() - max_bytes) : s;
}

// Arguments that pass this node's resources on to the agent.
std::vector<std::string> agent_args(const StartOptions& o, const std::string& state_dir,
                                    const control::ClusterAccess& access, const std::string& node_ip,
                                    const std::string& role) {
  std::vector<std::string> a = {"llmctl", "--state-dir", state_dir, "--log-level", "info", "agent",
                                "--address", access.address, "--node-ip-address", node_ip, "--role", role};
  if (!access.tls_ca.empty()) a.insert(a.end(), {"--tls-ca", access.tls_ca});
  if (o.num_gpus >= 0) a.insert(a.end(), {"--num-gpus", std::to_string(o.num_gpus)});
  if (o.num_cpus >= 0) a.insert(a.end(), {"--num-cpus", std::to_string(o.num_cpus)});
  if (!o.resources.empty()) a.insert(a.end(), {"--resources", o.resources});
  if (!o.node_name.empty()) a.insert(a.end(), {"--node-name", o.node_name});
  return a;
}

// Starts one daemon of this node (`llmctl head` or `llmctl agent`) detached,
// its stdout/stderr appended to `out_log`, and records its pid in `pid_file`.
Result<pid_t> spawn_daemon(const std::vector<std::string>& args, const std::string& token, const std::string& out_log,
                           const std::string& pid_file, const std::string& what) {
  auto pid = control::spawn_detached(args, {"LLMCTL_TOKEN=" + token}, out_log);
  if (!pid.is_ok()) return pid.status().with_context("starting the " + what);
  if (Status s = control::write_pid_file(pid_file, *pid); !s.is_ok()) {
    return s.with_context(fmt::format("the {} started (pid {})", what, *pid));
  }
  return *pid;
}

// Waits until the head lists this node's agent (by its node id, which the
// agent reads from the same state dir) as Active and connected. Not by
// address: several nodes may share one (agents with their own state dirs on
// one host, on loopback), and another node's entry is no sign that this
// agent has registered.
Status wait_for_node(const control::ClusterAccess& access, const std::string& node_id, const std::string& agent_pid_file,
                     std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  Status last = Status::deadline_exceeded("the agent did not join in time");
  while (std::chrono::steady_clock::now() < deadline) {
    if (control::running_pid(agent_pid_file) == 0) return Status::unavailable("the agent exited");
    auto client = control::connect_to(access, 1000ms);
    if (client.is_ok()) {
      auto s = (*client)->call("cluster.status", nlohmann::json::object(), 2000ms);
      if (s.is_ok()) {
        for (const auto& n : (*s)["nodes"]) {
          if (n.value("node_id", "") == node_id && n.value("state", "") == "Active" && n.value("connected", false)) {
            return Status::ok();
          }
        }
      } else {
        last = s.status();
      }
    } else {
      last = client.status();
      if (last.code() == StatusCode::kPermissionDenied) return last;
    }
    std::this_thread::sleep_for(100ms);
  }
  return last;
}

int block_until_stopped(const std::vector<std::string>& pid_files) {
  signal(SIGINT, [](int) { g_stop_requested = 1; });
  signal(SIGTERM, [](int) { g_stop_requested = 1; });
  for (;;) {
    bool any = false;
    for (const auto& f : pid_files) any = any || control::running_pid(f) > 0;
    if (!any) return kExitOk;
    if (g_stop_requested) {
      for (const auto& f : pid_files) {
        if (pid_t p = control::running_pid(f)) ::kill(p, SIGTERM);
      }
      g_stop_requested = 0;
    }
    std::this_thread::sleep_for(200ms);
  }
}

int start_head(const StartOptions& o, const GlobalOptions& global) {
  std::string state_dir = resolve_state_dir(global);
  control::NodePaths paths(state_dir);
  if (pid_t pid = control::running_pid(paths.head_pid)) {
    return report_error("start", Status::already_exists(fmt::format(
                                     "a head is already running on this node (pid {}, state dir {}); "
                                     "stop it first with `llmctl stop`",
                                     pid, state_dir)));
  }
  std::string node_ip = control::guess_node_address(o.node_ip);
  // A restarted head keeps its token, so running agents re-attach.
  std::string token = o.token;
  if (token.empty()) {
    auto old = control::read_cluster_access(paths);
    token = old.is_ok() ? old->token : control::new_cluster_token();
  }
  control::ClusterAccess access{fmt::format("{}:{}", node_ip, o.port), token, absolute_path(o.tls_cert)};
  if (Status s = control::write_cluster_access(paths, access); !s.is_ok()) return report_error("start", s);

  std::vector<std::string> head_args = {"llmctl", "--state-dir", state_dir, "--log-level", "info", "head",
                                        "--port", std::to_string(o.port), "--node-ip-address", node_ip,
                                        "--heartbeat-period-ms", std::to_string(o.heartbeat_period_ms),
                                        "--num-missed-heartbeats", std::to_string(o.num_missed_heartbeats)};
  if (!o.tls_cert.empty()) {
    head_args.insert(head_args.end(), {"--tls-cert", absolute_path(o.tls_cert), "--tls-key", absolute_path(o.tls_key)});
  }
  std::string head_out = paths.logs_dir + "/head.out";
  auto head_pid = spawn_daemon(head_args, token, head_out, paths.head_pid, "head");
  if (!head_pid.is_ok()) return report_error("start", head_pid.status());

  // Returns once the head answers.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  Status answered = Status::deadline_exceeded("the head did not answer within 10 s");
  while (std::chrono::steady_clock::now() < deadline) {
    if (control::running_pid(paths.head_pid) == 0) {
      answered = Status::unavailable(fmt::format("the head exited; its log ({}) ends with:\n{}", head_out, tail_of(head_out, 2000)));
      break;
    }
    auto c = control::connect_to(access, 1000ms);
    if (c.is_ok() && (*c)->call("cluster.status", nlohmann::json::object(), 2000ms).is_ok()) {
      answered = Status::ok();
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  if (!answered.is_ok()) return report_error("start", answered);

  // The node id the agent will register as (it reads this file; a running one already has).
  auto node_id = control::load_or_create_node_id(paths.agent_dir);
  if (!node_id.is_ok()) return report_error("start", node_id.status());
  if (pid_t pid = control::running_pid(paths.agent_pid)) {
    fmt::print("The agent of this node is already running (pid {}); it re-attaches to the head.\n", pid);
  } else {
    auto agent_pid = spawn_daemon(agent_args(o, state_dir, access, node_ip, "head"), token,
                                  paths.logs_dir + "/agent.out", paths.agent_pid, "agent");
    if (!agent_pid.is_ok()) return report_error("start", agent_pid.status());
  }
  if (Status s = wait_for_node(access, *node_id, paths.agent_pid, 10s); !s.is_ok()) {
    return report_error("start", s.with_context("the head started but this node's agent did not join"));
  }
  fmt::print("llmctl head started at {} (state dir {}).\n\n", access.address, state_dir);
  if (access.tls_ca.empty()) {
    fmt::print("To add a worker node, run on it:\n  llmctl start --address {} --token {}\n\n", access.address, token);
  } else {
    fmt::print("The control plane uses TLS. To add a worker node, copy {} to it, then run on it:\n"
               "  llmctl start --address {} --token {} --tls-ca {}\n\n",
               access.tls_ca, access.address, token, access.tls_ca);
  }
  fmt::print("To see the cluster:\n  llmctl status\n  llmctl nodes\n");
  fmt::print("To stop this node:\n  llmctl stop\n");
  std::fflush(stdout);
  if (o.block) return block_until_stopped({paths.agent_pid, paths.head_pid});
  return kExitOk;
}

int start_agent(const StartOptions& o, const GlobalOptions& global) {
  std::string state_dir = resolve_state_dir(global);
  control::NodePaths paths(state_dir);
  if (pid_t pid = control::running_pid(paths.agent_pid)) {
    return report_error("start", Status::already_exists(fmt::format(
                                     "an agent is already running on this node (pid {}, state dir {}); "
                                     "stop it first with `llmctl stop`",
                                     pid, state_dir)));
  }
  auto access = control::resolve_cluster_access(o.address, o.token, absolute_path(o.tls_ca), paths);
  if (!access.is_ok()) return report_error("start", access.status());
  if (auto hp = control::parse_host_port(access->address); !hp.is_ok()) return report_error("start", hp.status());
  if (Status s = control::write_cluster_access(paths, *access); !s.is_ok()) return report_error("start", s);
  std::string node_ip = control::guess_node_address(o.node_ip);
  auto node_id = control::load_or_create_node_id(paths.agent_dir);
  if (!node_id.is_ok()) return report_error("start", node_id.status());
  auto pid = spawn_daemon(agent_args(o, state_dir, *access, node_ip, "worker"), access->token,
                         paths.logs_dir + "/agent.out", paths.agent_pid, "agent");
  if (!pid.is_ok()) return report_error("start", pid.status());
  if (Status s = wait_for_node(*access, *node_id, paths.agent_pid, 10s); !s.is_ok()) {
    if (control::running_pid(paths.agent_pid) == 0) {
      return report_error("start", s.with_context(fmt::format("the agent exited; see {}/agent.out", paths.logs_dir)));
    }
    return report_error("start", s.with_context(fmt::format(
                                     "agent started (pid {}) but has not joined {} yet; it keeps retrying — see {}/agent.log",
                                     *pid, access->address, paths.logs_dir)));
  }
  fmt::print("llmctl agent started (pid {}) and joined the cluster at {} as {}.\n", *pid, access->address, node_ip);
  std::fflush(stdout);
  if (o.block) return block_until_stopped({paths.agent_pid});
  return kExitOk;
}

}  // namespace

void register_start(CLI::App& app, CliContext& ctx) {
  auto o = std::make_shared<StartOptions>();
  CLI::App* cmd = app.add_subcommand("start", "Start this node's daemons: a head (--head) or an agent joining --address");
  cmd->add_flag("--head", o->head, "Start the head daemon and an agent for this node; prints the join command");
  cmd->add_option("--address", o->address, "Head to join, HOST:PORT")->envname("LLMCTL_ADDRESS");
  cmd->add_option("--token", o->token, "Cluster token printed by `start --head`")->envname("LLMCTL_TOKEN");
  cmd->add_option("--node-ip-address", o->node_ip, "Address to advertise (default: what the hostname resolves to)");
  cmd->add_option("--node-name", o->node_name, "Name shown for this node (default: the hostname)");
  cmd->add_option("--port", o->port, "Head control-plane port")->capture_default_str();
  cmd->add_option("--dashboard-port", o->dashboard_port, "Dashboard port on the head")->capture_default_str();
  cmd->add_option("--num-gpus", o->num_gpus, "GPUs this node offers (default: detected)");
  cmd->add_option("--num-cpus", o->num_cpus, "CPUs this node offers (default: detected)");
  cmd->add_option("--resources", o->resources, R"(Custom resources as JSON, e.g. '{"node:lf001": 1}')");
  cmd->add_option("--config", o->config, "cluster.toml to take ports and env from");
  cmd->add_option("--tls-cert", o->tls_cert, "PEM certificate for TLS on the control plane");
  cmd->add_option("--tls-key", o->tls_key, "PEM key for --tls-cert");
  cmd->add_option("--tls-ca", o->tls_ca, "PEM certificate to check a TLS head against (joining with --address)");
  cmd->add_option("--heartbeat-period-ms", o->heartbeat_period_ms, "Head: how often agents heartbeat")->capture_default_str();
  cmd->add_option("--num-missed-heartbeats", o->num_missed_heartbeats, "Head: missed heartbeats before a node is Dead")
      ->capture_default_str();
  cmd->add_option("--state-dir", ctx.global.state_dir, "Where this node keeps its state (same as the global flag)");
  cmd->add_flag("--block", o->block, "Stay in the foreground until the daemons exit (Ctrl-C stops them)");
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      if (!o->tls_cert.empty() || !o->tls_key.empty()) {
        if (!o->head) return report_error("start", Status::invalid_argument("--tls-cert/--tls-key are for --head; "
                                                                            "a joining node takes --tls-ca"));
        // Checked here so a bad file is this command's error, not a head that exits.
        if (auto tls = transport::make_server_tls_context(o->tls_cert, o->tls_key); !tls.is_ok()) {
          return report_error("start", tls.status());
        }
      }
      if (!o->tls_ca.empty()) {
        if (auto tls = transport::make_client_tls_context(o->tls_ca); !tls.is_ok()) return report_error("start", tls.status());
      }
      if (o->head && !o->address.empty() && std::getenv("LLMCTL_ADDRESS") == nullptr) {
        return report_error("start", Status::invalid_argument("--head and --address exclude each other"));
      }
      if (!o->resources.empty()) {
        auto j = nlohmann::json::parse(o->resources, nullptr, false);
        if (j.is_discarded()) return report_error("start", Status::invalid_argument("--resources is not valid JSON"));
        if (auto r = placement::resources_from_json(j); !r.is_ok()) {
          return report_error("start", r.status().with_context("--resources"));
        }
      }
      if (o->head) return start_head(*o, ctx.global);
      if (o->address.empty()) {
        auto local = control::read_cluster_access(control::NodePaths(resolve_state_dir(ctx.global)));
        if (!local.is_ok()) {
          return report_error("start", Status::invalid_argument(
                                           "give --head to start a head, or --address HOST:PORT --token T to join one"));
        }
      }
      return start_agent(*o, ctx.global);
    };
  });
}

}  // namespace llmctl::cli
