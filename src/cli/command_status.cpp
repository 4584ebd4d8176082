// llmctl status: nodes by state, resources used/total, pending demands (issue #8).
#include <fmt/format.h>

#include "cli/cli_context.h"
#include "config/cluster_config.h"
#include "runtime/control/cluster_report.h"
#include "runtime/control/control_client.h"
#include "runtime/control/daemon.h"

namespace llmctl::cli {

namespace {

// --config cluster.toml: the head is [head] node_ip (else host) at [ports]
// head; the token is --token / LLMCTL_TOKEN, else what `llmctl up` kept for
// this cluster on this machine (a token is never in cluster.toml).
Result<control::ClusterAccess> access_from_config(const std::string& config_path, const std::string& token,
                                                  const std::string& tls_ca, const control::NodePaths& paths) {
  ASSIGN_OR_RETURN(ClusterConfig c, load_cluster_config(config_path));
  const std::string& host = c.head.node_ip.empty() ? c.head.host : c.head.node_ip;
  control::ClusterAccess access{fmt::format("{}:{}", host, c.ports.head), token, tls_ca};
  if (access.token.empty()) {
    std::string kept_file = control::launched_cluster_file(paths, c.name);
    auto kept = control::read_cluster_access_file(kept_file);
    if (!kept.is_ok()) {
      return Status::invalid_argument(fmt::format(
          "no token for cluster \"{}\" ({}): pass --token (or LLMCTL_TOKEN), or bring it up from here with `llmctl up {}`",
          c.name, kept.status().message(), config_path));
    }
    access.token = kept->token;
    if (access.tls_ca.empty()) access.tls_ca = kept->tls_ca;
  }
  return access;
}

}  // namespace

// Shared with `llmctl nodes`: the head's cluster.status reply, from the head
// named by --config, else --address/--token, else this node's cluster.
Result<nlohmann::json> fetch_cluster_status(const GlobalOptions& global, const std::string& config,
                                            const std::string& address, const std::string& token,
                                            const std::string& tls_ca) {
  control::NodePaths paths(resolve_state_dir(global));
  if (!config.empty() && !address.empty()) {
    return Status::invalid_argument("--config and --address both name the head; give one");
  }
  ASSIGN_OR_RETURN(control::ClusterAccess access, config.empty()
                                                      ? control::resolve_cluster_access(address, token, tls_ca, paths)
                                                      : access_from_config(config, token, tls_ca, paths));
  auto client = control::connect_to(access, std::chrono::milliseconds(3000));
  if (!client.is_ok()) return client.status().with_context(fmt::format("cannot reach the head at {}", access.address));
  return (*client)->call("cluster.status", nlohmann::json::object(), std::chrono::milliseconds(5000));
}

void register_status(CLI::App& app, CliContext& ctx) {
  struct Options {
    std::string address, token, config, tls_ca;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("status", "Show the cluster: nodes by state, resources used/total, pending demands");
  cmd->add_option("--address", o->address, "Head HOST:PORT (default: this node's cluster)")->envname("LLMCTL_ADDRESS");
  cmd->add_option("--token", o->token, "Cluster token")->envname("LLMCTL_TOKEN");
  cmd->add_option("--config", o->config, "cluster.toml brought up with `llmctl up`");
  cmd->add_option("--tls-ca", o->tls_ca, "PEM certificate to check a TLS head against (default: this node's)");
  cmd->add_option("--state-dir", ctx.global.state_dir, "Where this node keeps its state (same as the global flag)");
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      auto status = fetch_cluster_status(ctx.global, o->config, o->address, o->token, o->tls_ca);
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
