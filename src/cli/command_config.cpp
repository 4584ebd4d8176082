// llmctl config show|check FILE: the effective cluster.toml, or just validation.
#include <cstdio>

#include "cli/cli_context.h"
#include "config/cluster_config.h"

namespace llmctl::cli {

void register_config(CLI::App& app, CliContext& ctx) {
  auto file = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("config", "Show or check a cluster.toml");
  cmd->require_subcommand(1);
  CLI::App* show = cmd->add_subcommand("show", "Print the effective configuration with every default filled in");
  show->add_option("file", *file, "cluster.toml")->required();
  show->callback([&ctx, file] {
    ctx.action = [file] {
      auto config = load_cluster_config(*file);
      if (!config.is_ok()) return report_error("config show", config.status());
      std::fputs(to_toml(*config).c_str(), stdout);
      return kExitOk;
    };
  });
  CLI::App* check = cmd->add_subcommand("check", "Validate a cluster.toml; exit 2 and list every problem if invalid");
  check->add_option("file", *file, "cluster.toml")->required();
  check->callback([&ctx, file] {
    ctx.action = [file] {
      auto config = load_cluster_config(*file);
      if (!config.is_ok()) return report_error("config check", config.status());
      std::printf("%s: ok (%zu nodes, %zu models)\n", file->c_str(), config->nodes().size(), config->models.size());
      return kExitOk;
    };
  });
  (void)json;
}

}  // namespace llmctl::cli
