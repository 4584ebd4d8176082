// Hidden entry points the daemons and rank processes are started with.
// Users never type these; `start`, `serve` and agents do.
#include "cli/cli_context.h"

namespace llmctl::cli {

void register_internal(CLI::App& app, CliContext& ctx) {
  for (const auto& [name, what, issue] :
       {std::tuple{"head", "run the head daemon in the foreground", 8},
        std::tuple{"agent", "run a node agent in the foreground", 8},
        std::tuple{"worker", "run one engine rank", 9}}) {
    CLI::App* cmd = app.add_subcommand(name, what);
    cmd->group("");  // hidden from --help and completions
    cmd->allow_extras();
    std::string n = name;
    int i = issue;
    cmd->callback([&ctx, n, i] { ctx.action = [n, i] { return not_implemented(n, i); }; });
  }
}

}  // namespace llmctl::cli
