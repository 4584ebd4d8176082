// llmctl status: nodes by state, resources used/total, pending demands (issue #8).
#include <fmt/format.h>

#include "cli/cli_context.h"
#include "runtime/control/cluster_report.h"
#include "runtime/control/control_client.h"
#include "runtime/control/daemon.h"

namespace llmctl::cli {

// Shared with `llmctl nodes`: the head's cluster.status reply.
Result<nlohmann::json> fetch_cluster_status(const GlobalOptions& global, const std::string& address,
                                            const std::string& token) {
  control::NodePaths paths(resolve_state_dir(global));
  ASSIGN_OR_RETURN(control::ClusterAccess access, control::resolve_cluster_access(address, token, paths));
  ASSIGN_OR_RETURN(auto hp, control::parse_host_port(access.address));
  auto client = control::ControlClient::connect(hp.first, hp.second, access.token, std::chrono::milliseconds(3000));
  if (!client.is_ok()) return client.status().with_context(fmt::format("cannot reach the head at {}", access.address));
  return (*client)->call("cluster.status", nlohmann::json::object(), std::chrono::milliseconds(5000));
}

void register_status(CLI::App& app, CliContext& ctx) {
  struct Options {
    std::string address, token, config;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("status", "Show the cluster: nodes by state, resources used/total, pending demands");
  cmd->add_option("--address", o->address, "Head HOST:PORT (default: this node's cluster)")->envname("LLMCTL_ADDRESS");
  cmd->add_option("--token", o->token, "Cluster token")->envname("LLMCTL_TOKEN");
  cmd->add_option("--config", o->config, "cluster.toml brought up with `llmctl up`");
  cmd->add_option("--state-dir", ctx.global.state_dir, "Where this node keeps its state (same as the global flag)");
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      if (!o->config.empty()) return report_error("status", Status::unimplemented("--config needs `llmctl up` (issue #10)"));
      auto status = fetch_cluster_status(ctx.global, o->address, o->token);
      if (!status.is_ok()) return report_error("status", status.status());
      if (o->json) {
        fmt::print("{}\n", status->dump(2));
      } else {
        fmt::print("{}", control::format_status(*status));
      }
      return kExitOk;
    };
  });
}

}  // namespace llmctl::cli
