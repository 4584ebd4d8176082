// llmctl down: stop every node of a cluster.toml cluster (issue #10).
#include "cli/cli_context.h"

namespace llmctl::cli {

void register_down(CLI::App& app, CliContext& ctx) {
  struct Options {
    std::string config;
    bool keep_state = false, yes = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("down", "Stop every node of the cluster in cluster.toml (workers, then the head)");
  cmd->add_option("config", o->config, "cluster.toml")->required();
  cmd->add_flag("--keep-state", o->keep_state, "Keep each node's state dir (logs, head log)");
  cmd->add_flag("-y,--yes", o->yes, "Do not ask for confirmation");
  cmd->callback([&ctx, o] { ctx.action = [] { return not_implemented("down", 10); }; });
}

}  // namespace llmctl::cli
