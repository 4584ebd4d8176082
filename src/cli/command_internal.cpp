// Hidden entry points the daemons and rank processes are started with, and
// internal client commands (kv, submit) that tests and later `serve` use.
// Users never type these; `start`, `serve` and agents do.
#include <unistd.h>

#include <chrono>
#include <csignal>

#include <asio.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/cli_context.h"
#include "common/gpu_inventory.h"
#include "common/logging.h"
#include "runtime/control/agent.h"
#include "runtime/control/control_client.h"
#include "runtime/control/daemon.h"
#include "runtime/control/head.h"
#include "runtime/control/resource_sampler.h"

namespace llmctl::cli {
namespace {

using namespace std::chrono_literals;

std::string token_from(const std::string& flag, const control::NodePaths& paths) {
  if (!flag.empty()) return flag;
  auto a = control::read_cluster_access(paths);
  return a.is_ok() ? a->token : "";
}

void register_head(CLI::App& app, CliContext& ctx) {
  struct Options {
    int port = 6379;
    std::string bind = "0.0.0.0", node_ip, token, tls_cert, tls_key;
    int heartbeat_period_ms = 200, num_missed_heartbeats = 5;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("head", "run the head daemon in the foreground");
  cmd->group("");
  cmd->add_option("--port", o->port);
  cmd->add_option("--bind", o->bind);
  cmd->add_option("--node-ip-address", o->node_ip);
  cmd->add_option("--token", o->token)->envname("LLMCTL_TOKEN");
  cmd->add_option("--heartbeat-period-ms", o->heartbeat_period_ms);
  cmd->add_option("--num-missed-heartbeats", o->num_missed_heartbeats);
  cmd->add_option("--tls-cert", o->tls_cert);
  cmd->add_option("--tls-key", o->tls_key);
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      control::NodePaths paths(resolve_state_dir(ctx.global));
      setup_logging(ctx.global, "head", /*to_file=*/true);
      control::HeadOptions ho;
      ho.state_dir = paths.head_dir;
      ho.bind_address = o->bind;
      ho.port = static_cast<std::uint16_t>(o->port);
      ho.advertise_address = control::guess_node_address(o->node_ip);
      ho.token = token_from(o->token, paths);
      ho.heartbeat_period_ms = o->heartbeat_period_ms;
      ho.num_missed_heartbeats = o->num_missed_heartbeats;
      if (ho.token.empty()) return report_error("head", Status::invalid_argument("no cluster token (LLMCTL_TOKEN)"));
      if (!o->tls_cert.empty() || !o->tls_key.empty()) {
        auto tls = transport::make_server_tls_context(o->tls_cert, o->tls_key);
        if (!tls.is_ok()) return report_error("head", tls.status());
        ho.tls = *tls;
      }
      asio::io_context io(1);
      control::SteadyClock clock;
      control::Head head(io, ho, clock);
      auto port = head.start();
      if (!port.is_ok()) return report_error("head", port.status());
      (void)control::write_pid_file(paths.head_pid, ::getpid());
      asio::signal_set signals(io, SIGTERM, SIGINT);
      signals.async_wait([&](asio::error_code, int sig) {
        logger("head")->info("signal {}: stopping", sig);
        head.stop();
        io.stop();
      });
      ::signal(SIGPIPE, SIG_IGN);
      io.run();
      return kExitOk;
    };
  });
}

void register_agent(CLI::App& app, CliContext& ctx) {
  struct Options {
    std::string address, token, node_ip, node_name, resources, role = "worker", tls_ca;
    int num_gpus = -1, num_cpus = -1;
    double grace_period_s = 5;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("agent", "run a node agent in the foreground");
  cmd->group("");
  cmd->add_option("--address", o->address);
  cmd->add_option("--token", o->token)->envname("LLMCTL_TOKEN");
  cmd->add_option("--node-ip-address", o->node_ip);
  cmd->add_option("--node-name", o->node_name);
  cmd->add_option("--role", o->role);
  cmd->add_option("--num-gpus", o->num_gpus);
  cmd->add_option("--num-cpus", o->num_cpus);
  cmd->add_option("--resources", o->resources);
  cmd->add_option("--grace-period", o->grace_period_s);
  cmd->add_option("--tls-ca", o->tls_ca);
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      control::NodePaths paths(resolve_state_dir(ctx.global));
      setup_logging(ctx.global, "agent", /*to_file=*/true);
      auto hp = control::parse_host_port(o->address);
      if (!hp.is_ok()) return report_error("agent", hp.status());
      control::AgentOptions ao;
      ao.state_dir = paths.agent_dir;
      ao.head_host = hp->first;
      ao.head_port = hp->second;
      ao.token = token_from(o->token, paths);
      if (ao.token.empty()) return report_error("agent", Status::invalid_argument("no cluster token (LLMCTL_TOKEN)"));
      if (!o->tls_ca.empty()) {
        auto tls = transport::make_client_tls_context(o->tls_ca);
        if (!tls.is_ok()) return report_error("agent", tls.status());
        ao.tls = *tls;
      }
      ao.node_address = control::guess_node_address(o->node_ip);
      ao.node_name = o->node_name;
      ao.role = o->role;
      auto totals = control::probe_host_totals();
      ao.resources["CPU"] = o->num_cpus >= 0 ? o->num_cpus : totals.num_cpus;
      ao.resources["GPU"] = o->num_gpus >= 0 ? o->num_gpus : static_cast<double>(probe_gpus().devices.size());
      ao.resources["memory"] = static_cast<double>(totals.memory_bytes);
      ao.resources["node:" + ao.node_address] = 1;
      if (!o->resources.empty()) {
        auto j = nlohmann::json::parse(o->resources, nullptr, false);
        auto custom = placement::resources_from_json(j.is_discarded() ? nlohmann::json("bad") : j);
        if (!custom.is_ok()) return report_error("agent", custom.status().with_context("--resources"));
        for (const auto& [k, v] : *custom) ao.resources[k] = v;
      }
      asio::io_context io(1);
      control::Agent agent(io, ao);
      if (Status s = agent.start(); !s.is_ok()) return report_error("agent", s);
      (void)control::write_pid_file(paths.agent_pid, ::getpid());
      asio::signal_set signals(io, SIGTERM, SIGINT);
      int grace_ms = static_cast<int>(o->grace_period_s * 1000);
      signals.async_wait([&](asio::error_code, int sig) {
        logger("agent")->info("signal {}: leaving the cluster", sig);
        agent.leave(1000, grace_ms, [&io] { io.stop(); });
      });
      ::signal(SIGPIPE, SIG_IGN);
      io.run();
      return kExitOk;
    };
  });
}

// Connects to the cluster named by --address/--token or this node's state.
Result<std::unique_ptr<control::ControlClient>> connect_cluster(const GlobalOptions& global, const std::string& address,
                                                                const std::string& token, const std::string& tls_ca) {
  control::NodePaths paths(resolve_state_dir(global));
  ASSIGN_OR_RETURN(control::ClusterAccess access, control::resolve_cluster_access(address, token, tls_ca, paths));
  return control::connect_to(access, 3000ms);
}

void register_kv(CLI::App& app, CliContext& ctx) {
  struct Options {
    std::string address, token, op, key, value, tls_ca;
    int timeout_ms = 10000;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("kv", "the head's key-value store: put KEY VALUE | get KEY | wait KEY | delete PREFIX | list PREFIX");
  cmd->group("");
  cmd->add_option("op", o->op)->required()->check(CLI::IsMember({"put", "get", "wait", "delete", "list"}));
  cmd->add_option("key", o->key);
  cmd->add_option("value", o->value);
  cmd->add_option("--address", o->address)->envname("LLMCTL_ADDRESS");
  cmd->add_option("--token", o->token)->envname("LLMCTL_TOKEN");
  cmd->add_option("--timeout-ms", o->timeout_ms);
  cmd->add_option("--tls-ca", o->tls_ca);
  cmd->add_option("--state-dir", ctx.global.state_dir);
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      auto client = connect_cluster(ctx.global, o->address, o->token, o->tls_ca);
      if (!client.is_ok()) return report_error("kv", client.status());
      nlohmann::json body;
      if (o->op == "put") body = {{"key", o->key}, {"value", o->value}};
      if (o->op == "get") body = {{"key", o->key}};
      if (o->op == "wait") body = {{"key", o->key}, {"timeout_ms", o->timeout_ms}};
      if (o->op == "delete" || o->op == "list") body = {{"prefix", o->key}};
      auto r = (*client)->call("kv." + o->op, body, std::chrono::milliseconds(o->timeout_ms + 2000));
      if (!r.is_ok()) return report_error("kv", r.status());
      if (o->op == "get" || o->op == "wait") {
        if (!r->value("found", false)) return report_error("kv", Status::not_found(fmt::format("no key \"{}\"", o->key)));
        fmt::print("{}\n", r->value("value", ""));
      } else if (o->op == "list") {
        for (const auto& k : (*r)["keys"]) fmt::print("{}\n", k.get<std::string>());
      } else if (o->op == "delete") {
        fmt::print("{}\n", r->value("num_deleted", 0));
      }
      return kExitOk;
    };
  });
}

void register_submit(CLI::App& app, CliContext& ctx) {
  struct Options {
    std::string address, token, name, strategy = "PACK", bundles, restart = "never", remove, tls_ca;
    int max_restarts = 3;
    std::vector<std::string> command;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "submit", "request a placement group: --bundles '[{\"GPU\":1},{\"GPU\":1}]' --strategy SPREAD -- COMMAND...");
  cmd->group("");
  cmd->add_option("--address", o->address)->envname("LLMCTL_ADDRESS");
  cmd->add_option("--token", o->token)->envname("LLMCTL_TOKEN");
  cmd->add_option("--name", o->name);
  cmd->add_option("--strategy", o->strategy);
  cmd->add_option("--bundles", o->bundles);
  cmd->add_option("--restart", o->restart);
  cmd->add_option("--max-restarts", o->max_restarts);
  cmd->add_option("--remove", o->remove, "remove the placement group with this id instead");
  cmd->add_option("--tls-ca", o->tls_ca);
  cmd->add_option("--state-dir", ctx.global.state_dir);
  cmd->add_option("command", o->command);
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      auto client = connect_cluster(ctx.global, o->address, o->token, o->tls_ca);
      if (!client.is_ok()) return report_error("submit", client.status());
      if (!o->remove.empty()) {
        auto r = (*client)->call("placement.remove", {{"group_id", o->remove}}, 5000ms);
        if (!r.is_ok()) return report_error("submit", r.status());
        return kExitOk;
      }
      auto bundles = nlohmann::json::parse(o->bundles, nullptr, false);
      if (bundles.is_discarded() || !bundles.is_array()) {
        return report_error("submit", Status::invalid_argument("--bundles must be a JSON array of resource objects"));
      }
      nlohmann::json body = {{"name", o->name}, {"strategy", o->strategy}, {"restart", o->restart},
                             {"max_restarts", o->max_restarts}, {"bundles", nlohmann::json::array()}};
      for (const auto& b : bundles) body["bundles"].push_back({{"resources", b}, {"command", o->command}});
      auto r = (*client)->call("placement.submit", body, 5000ms);
      if (!r.is_ok()) return report_error("submit", r.status());
      fmt::print("{}\n", r->dump(2));
      return kExitOk;
    };
  });
}

}  // namespace

void register_internal(CLI::App& app, CliContext& ctx) {
  register_head(app, ctx);
  register_agent(app, ctx);
  register_kv(app, ctx);
  register_submit(app, ctx);
}

}  // namespace llmctl::cli
