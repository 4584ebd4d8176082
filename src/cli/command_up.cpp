// llmctl up: bring a whole cluster up from cluster.toml over SSH (issue #10).
#include "cli/cli_context.h"

namespace llmctl::cli {

void register_up(CLI::App& app, CliContext& ctx) {
  struct Options {
    std::string config;
    bool yes = false, dry_run = false, accept_new_host_keys = false;
    double timeout_s = 120;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("up", "Bring up the cluster described by cluster.toml over SSH (idempotent)");
  cmd->add_option("config", o->config, "cluster.toml")->required();
  cmd->add_flag("-y,--yes", o->yes, "Do not ask for confirmation");
  cmd->add_flag("--dry-run", o->dry_run, "Print what would be done and change nothing");
  cmd->add_flag("--accept-new-host-keys", o->accept_new_host_keys, "Trust host keys seen for the first time");
  cmd->add_option("--timeout", o->timeout_s, "Seconds to wait for every node to be Active")->capture_default_str();
  cmd->callback([&ctx, o] { ctx.action = [] { return not_implemented("up", 10); }; });
}

}  // namespace llmctl::cli
