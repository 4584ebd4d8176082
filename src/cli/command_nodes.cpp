// llmctl nodes: one line per node, like `ray list nodes` (issue #8).
#include "cli/cli_context.h"

namespace llmctl::cli {

void register_nodes(CLI::App& app, CliContext& ctx) {
  struct Options {
    std::string address, token, config;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("nodes", "List nodes: id, name, address, role, state, resources, heartbeat age");
  cmd->add_option("--address", o->address, "Head HOST:PORT (default: this node's cluster)")->envname("LLMCTL_ADDRESS");
  cmd->add_option("--token", o->token, "Cluster token")->envname("LLMCTL_TOKEN");
  cmd->add_option("--config", o->config, "cluster.toml brought up with `llmctl up`");
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->callback([&ctx, o] { ctx.action = [] { return not_implemented("nodes", 8); }; });
}

}  // namespace llmctl::cli
