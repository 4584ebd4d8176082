// llmctl nodes: one line per node, like `ray list nodes` (issue #8).
#include <fmt/format.h>

#include "cli/cli_context.h"
#include "runtime/control/cluster_report.h"

namespace llmctl::cli {

// Defined in command_status.cpp.
Result<nlohmann::json> fetch_cluster_status(const GlobalOptions& global, const std::string& config,
                                            const std::string& address, const std::string& token,
                                            const std::string& tls_ca);

void register_nodes(CLI::App& app, CliContext& ctx) {
  struct Options {
    std::string address, token, config, tls_ca;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("nodes", "List nodes: id, name, address, role, state, resources, heartbeat age");
  cmd->add_option("--address", o->address, "Head HOST:PORT (default: this node's cluster)")->envname("LLMCTL_ADDRESS");
  cmd->add_option("--token", o->token, "Cluster token")->envname("LLMCTL_TOKEN");
  cmd->add_option("--config", o->config, "cluster.toml brought up with `llmctl up`");
  cmd->add_option("--tls-ca", o->tls_ca, "PEM certificate to check a TLS head against (default: this node's)");
  cmd->add_option("--state-dir", ctx.global.state_dir, "Where this node keeps its state (same as the global flag)");
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      auto status = fetch_cluster_status(ctx.global, o->config, o->address, o->token, o->tls_ca);
      if (!status.is_ok()) return report_error("nodes", status.status());
      if (o->json) {
        fmt::print("{}\n", control::nodes_json(*status).dump(2));
      } else {
        fmt::print("{}", control::format_nodes(*status));
      }
      return kExitOk;
    };
  });
}

}  // namespace llmctl::cli
