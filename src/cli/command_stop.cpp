// llmctl stop: stop this node's daemons, leaving the cluster at once (issue #8).
#include "cli/cli_context.h"

namespace llmctl::cli {

void register_stop(CLI::App& app, CliContext& ctx) {
  struct Options {
    bool force = false;
    double grace_period_s = 10;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("stop", "Stop this node's llmctl daemons (a graceful stop leaves the cluster at once)");
  cmd->add_flag("--force", o->force, "Kill at once (SIGKILL) instead of a graceful stop");
  cmd->add_option("--grace-period", o->grace_period_s, "Seconds to wait before killing")->capture_default_str();
  cmd->callback([&ctx, o] { ctx.action = [] { return not_implemented("stop", 8); }; });
}

}  // namespace llmctl::cli
