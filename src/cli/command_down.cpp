// llmctl down: stop every node of a cluster.toml cluster (issue #10).
// The work is remote::cluster_down; this file maps flags, prompts and prints.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include <fmt/format.h>

#include "cli/cli_context.h"
#include "config/cluster_config.h"
#include "runtime/remote/cluster_launcher.h"

namespace llmctl::cli {

void register_down(CLI::App& app, CliContext& ctx) {
  struct Options {
    std::string config;
    bool keep_state = false, yes = false, accept_new_host_keys = false;
    double connect_timeout_s = 10;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("down", "Stop every node of the cluster in cluster.toml (workers, then the head)");
  cmd->add_option("config", o->config, "cluster.toml")->required();
  cmd->add_flag("--keep-state", o->keep_state, "Keep each node's state dir (logs, head log)");
  cmd->add_flag("-y,--yes", o->yes, "Do not ask for confirmation");
  cmd->add_flag("--accept-new-host-keys", o->accept_new_host_keys, "Trust host keys seen for the first time");
  cmd->add_option("--connect-timeout", o->connect_timeout_s, "Seconds to connect and authenticate per host")
      ->capture_default_str();
  cmd->add_option("--state-dir", ctx.global.state_dir, "Where this machine keeps the cluster's token (same as the global flag)");
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      auto config = load_cluster_config(o->config);
      if (!config.is_ok()) return report_error("down", config.status());
      if (!o->yes) {
        if (!::isatty(STDIN_FILENO))
          return report_error("down", Status::invalid_argument("not a terminal to confirm on; pass --yes to stop the cluster"));
        fmt::print("Stop every llmctl daemon of cluster \"{}\"{}? [y/N] ", config->name,
                   o->keep_state ? "" : " and remove their state dirs");
        std::fflush(stdout);
        std::string answer;
        if (!std::getline(std::cin, answer) || (answer != "y" && answer != "Y" && answer != "yes")) {
          fmt::print(stderr, "llmctl down: not confirmed; nothing was changed\n");
          return kExitFailure;
        }
      }
      remote::LaunchOptions lo;
      lo.keep_state = o->keep_state;
      lo.accept_new_host_keys = o->accept_new_host_keys;
      lo.connect_timeout_s = o->connect_timeout_s;
      lo.local_state_dir = resolve_state_dir(ctx.global);
      lo.print = [](const std::string& line) {
        fmt::print("{}\n", line);
        std::fflush(stdout);
      };
      remote::LaunchReport r = remote::cluster_down(*config, lo);
      for (const auto& e : r.errors) fmt::print(stderr, "llmctl down: {}\n", e);
      if (!r.errors.empty()) return kExitFailure;
      fmt::print("Cluster \"{}\" is down: no llmctl daemon runs on its {} host(s).\n", r.cluster, r.nodes.size());
      return kExitOk;
    };
  });
}

}  // namespace llmctl::cli
