// llmctl logs: one search over every node's logs (issue #11).
#include "cli/cli_context.h"

namespace llmctl::cli {

void register_logs(CLI::App& app, CliContext& ctx) {
  struct Options {
    std::string grep, level, since, until, address, token, config;
    std::vector<std::string> nodes, components;
    int tail = 0, max_lines = 1000;
    bool follow = false, json = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("logs", "Search every node's logs at once: llmctl logs --grep Gloo");
  cmd->add_option("--grep", o->grep, "Regular expression (ECMAScript) to match");
  cmd->add_option("--node", o->nodes, "Only this node (repeatable)");
  cmd->add_option("--component", o->components, "Only this component: head, agent, engine, worker, job (repeatable)");
  cmd->add_option("--level", o->level, "Lowest level to show: debug, info, warn, error");
  cmd->add_option("--since", o->since, "Start time: 10m, 2h, or 2026-11-28T06:00:00");
  cmd->add_option("--until", o->until, "End time, same forms as --since");
  cmd->add_option("--tail", o->tail, "Only the last N matching lines");
  cmd->add_option("--max-lines", o->max_lines, "Stop after this many lines")->capture_default_str();
  cmd->add_flag("-f,--follow", o->follow, "Keep streaming new matching lines until interrupted");
  cmd->add_flag("--json", o->json, "One JSON object per line");
  cmd->add_option("--address", o->address, "Head HOST:PORT")->envname("LLMCTL_ADDRESS");
  cmd->add_option("--token", o->token, "Cluster token")->envname("LLMCTL_TOKEN");
  cmd->add_option("--config", o->config, "cluster.toml brought up with `llmctl up`");
  cmd->callback([&ctx, o] { ctx.action = [] { return not_implemented("logs", 11); }; });
}

}  // namespace llmctl::cli
