// llmctl start: start the head daemon (--head) or an agent that joins (--address) (issue #8).
#include "cli/cli_context.h"

namespace llmctl::cli {

void register_start(CLI::App& app, CliContext& ctx) {
  struct Options {
    bool head = false;
    std::string address, token, node_ip, resources, config, tls_cert, tls_key;
    int port = 6379, dashboard_port = 8265, num_gpus = -1, num_cpus = -1;
    bool block = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("start", "Start this node's daemons: a head (--head) or an agent joining --address");
  cmd->add_flag("--head", o->head, "Start the head daemon and an agent for this node; prints the join command");
  cmd->add_option("--address", o->address, "Head to join, HOST:PORT")->envname("LLMCTL_ADDRESS");
  cmd->add_option("--token", o->token, "Cluster token printed by `start --head`")->envname("LLMCTL_TOKEN");
  cmd->add_option("--node-ip-address", o->node_ip, "Address to advertise (default: what the hostname resolves to)");
  cmd->add_option("--port", o->port, "Head control-plane port")->capture_default_str();
  cmd->add_option("--dashboard-port", o->dashboard_port, "Dashboard port on the head")->capture_default_str();
  cmd->add_option("--num-gpus", o->num_gpus, "GPUs this node offers (default: detected)");
  cmd->add_option("--num-cpus", o->num_cpus, "CPUs this node offers (default: detected)");
  cmd->add_option("--resources", o->resources, R"(Custom resources as JSON, e.g. '{"node:lf001": 1}')");
  cmd->add_option("--config", o->config, "cluster.toml to take ports and env from");
  cmd->add_option("--tls-cert", o->tls_cert, "PEM certificate for TLS on the control plane");
  cmd->add_option("--tls-key", o->tls_key, "PEM key for --tls-cert");
  cmd->add_flag("--block", o->block, "Stay in the foreground instead of daemonizing");
  cmd->callback([&ctx, o] { ctx.action = [] { return not_implemented("start", 8); }; });
}

}  // namespace llmctl::cli
