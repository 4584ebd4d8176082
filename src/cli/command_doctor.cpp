// llmctl doctor: find what will break a multi-node cluster, before it breaks (issue #3).
#include "cli/cli_context.h"

namespace llmctl::cli {

void register_doctor(CLI::App& app, CliContext& ctx) {
  struct Options {
    std::string config;
    std::string peers;
    std::string address;
    std::string token;
    std::string model;
    std::string node_ip;
    bool listen = false;
    bool deep = false;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("doctor", "Check ports, hostnames, NICs, GPUs and limits on this node or the cluster");
  cmd->add_option("config", o->config, "cluster.toml: check every node it lists (over SSH)");
  cmd->add_option("--peers", o->peers, "Comma-separated peers running `llmctl doctor --listen` to check against");
  cmd->add_option("--address", o->address, "A running cluster's head (HOST:PORT) whose nodes to check");
  cmd->add_option("--token", o->token, "Cluster token for --listen, --peers and --address")->envname("LLMCTL_TOKEN");
  cmd->add_option("--model", o->model, "Model folder that must exist with the same content on every node");
  cmd->add_option("--node-ip-address", o->node_ip, "The address this node advertises (default: what its hostname resolves to)");
  cmd->add_flag("--listen", o->listen, "Open listeners on the cluster ports and answer peers' probes");
  cmd->add_flag("--deep", o->deep, "With --model: compare checksums, not only file sizes");
  cmd->add_flag("--json", o->json, "Print {\"checks\":[...],\"summary\":{...}}");
  cmd->footer("Exit status: 0 when nothing failed, 1 when a check failed, 2 on usage errors.");
  cmd->callback([&ctx, o] { ctx.action = [] { return not_implemented("doctor", 3); }; });
}

}  // namespace llmctl::cli
