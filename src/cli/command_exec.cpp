// llmctl exec: run a command on the cluster's hosts in parallel (issue #10).
#include "cli/cli_context.h"

namespace llmctl::cli {

void register_exec(CLI::App& app, CliContext& ctx) {
  struct Options {
    std::string config;
    std::vector<std::string> nodes;
    std::vector<std::string> command;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("exec", "Run a command on the cluster's hosts in parallel: llmctl exec cluster.toml -- CMD");
  cmd->add_option("config", o->config, "cluster.toml")->required();
  cmd->add_option("--node", o->nodes, "Only this node (repeatable)");
  cmd->add_option("command", o->command, "The command, after --");
  cmd->callback([&ctx, o] { ctx.action = [] { return not_implemented("exec", 10); }; });
}

}  // namespace llmctl::cli
