// llmctl doctor: find what will break a multi-node cluster, before it breaks (issue #3).
//   llmctl doctor                          local checks of this node
//   llmctl doctor --listen [--token T]     answer other nodes' checks until Ctrl-C
//   llmctl doctor --peers h1,h2 --token T  local checks + checks against peers' listeners
//   llmctl doctor cluster.toml             every host of the file over SSH: its own checks, then every
//                                          pair through listeners started there (remote::cluster_doctor)
//   llmctl doctor cluster.toml --local     what that runs on each host: this node's checks with the file's settings
//   llmctl doctor cluster.toml --outbound  ... and this node against the other hosts' running listeners
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/cli_context.h"
#include "common/open_file_limit.h"
#include "common/logging.h"
#include "common/state_dir.h"
#include "config/cluster_config.h"
#include "netcheck/local_checks.h"
#include "netcheck/report/report_json.h"
#include "netcheck/report/report_table.h"
#include "runtime/doctor/doctor_service.h"
#include "runtime/doctor/node_facts.h"
#include "runtime/doctor/peer_checker.h"
#include "runtime/remote/cluster_doctor.h"

namespace llmctl::cli {
namespace {

struct DoctorOptions {
  std::string config;
  std::string peers;
  std::string address;
  std::string token;
  std::string model;
  std::string node_ip;
  bool listen = false;
  bool deep = false;
  bool json = false;
  bool local = false;
  bool outbound = false;
  bool accept_new_host_keys = false;
  double connect_timeout_s = 10;
};

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

// Which node of the config this machine is: its host name or an address of ours.
const NodeConfig* find_self(const ClusterConfig& config, const netcheck::HostView& host) {
  std::string me = host.hostname();
  auto interfaces = host.interfaces();
  auto is_mine = [&](const std::string& a) {
    for (const auto& iface : interfaces) {
      for (const auto& ia : iface.addresses) {
        if (ia.address == a && !iface.loopback) return true;
      }
    }
    return false;
  };
  for (const auto* node : config.nodes()) {
    if (node->host == me || (!node->node_ip.empty() && is_mine(node->node_ip)) || is_mine(node->host)) return node;
  }
  return nullptr;
}

int print_report(const std::vector<netcheck::CheckResult>& results, bool json) {
  if (json) {
    std::fputs(netcheck::render_json(results).c_str(), stdout);
  } else {
    std::fputs(netcheck::render_table(results, ::isatty(STDOUT_FILENO) != 0).c_str(), stdout);
  }
  return netcheck::summarize(results).fail > 0 ? kExitFailure : kExitOk;
}

// `doctor cluster.toml` without a mode: the doctor on every host over SSH.
int run_cluster_doctor(const DoctorOptions& o, const ClusterConfig& config) {
  std::ifstream in(o.config, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return report_error("doctor", Status::io_error(fmt::format("cannot read {}", o.config)));
  remote::ClusterDoctorOptions options;
  options.config_text = text.str();
  options.accept_new_host_keys = o.accept_new_host_keys;
  options.connect_timeout_s = o.connect_timeout_s;
  // Progress to stderr: stdout is the report (one JSON document with --json).
  options.print = [](const std::string& line) {
    fmt::print(stderr, "{}\n", line);
    std::fflush(stderr);
  };
  return print_report(remote::cluster_doctor(config, options), o.json);
}

int run_listen(const doctor::DoctorServiceOptions& service_options, const netcheck::HostView& host) {
  auto service = doctor::DoctorService::start(service_options, host);
  if (!service.is_ok()) return report_error("doctor", service.status());
  const auto& summary = (*service)->summary();
  const PortsConfig& ports = service_options.probe.ports;
  if (!summary.has(ports.head)) {
    // Peers find the listener on the head port; without it nothing can be checked.
    return report_error("doctor", Status::already_exists(fmt::format(
                                      "cannot listen on head port {} ({}); run `llmctl doctor` to see what holds it",
                                      ports.head, fmt::join(summary.failures, "; "))));
  }
  std::string address = doctor::advertised_address(host, service_options.probe.node_ip);
  fmt::print("llmctl doctor: listening on {} ports of {} ({} of {} in {}-{}{}{})\n", summary.bound_ports.size(),
             service_options.probe.bind_address, summary.range_bound, summary.range_total, ports.node_range.first,
             ports.node_range.last, summary.failures.empty() ? "" : "; not bound: ",
             fmt::join(summary.failures, ", "));
  fmt::print("check from another node: llmctl doctor --peers {} --token {}\n", address.empty() ? host.hostname() : address,
             service_options.token);
  std::fflush(stdout);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  while (!g_stop) ::usleep(100 * 1000);
  (*service)->stop();
  return kExitOk;
}

int run_doctor(const GlobalOptions& global, const DoctorOptions& o) {
  setup_logging(global, "doctor", /*to_file=*/false);
  if (o.deep && o.model.empty()) return report_error("doctor", Status::invalid_argument("--deep needs --model PATH"));
  if (o.listen && !o.peers.empty()) {
    return report_error("doctor", Status::invalid_argument("--listen and --peers are separate runs: listen on every node, check from one"));
  }
  if ((o.local || o.outbound) && o.config.empty())
    return report_error("doctor", Status::invalid_argument("--local and --outbound need cluster.toml"));
  // --outbound --peers: exactly those peers (addresses), instead of the file's names.
  if (o.local + o.outbound + o.listen + (!o.peers.empty() && !o.outbound) > 1)
    return report_error("doctor", Status::invalid_argument("--local, --outbound, --listen and --peers are separate runs"));
  if (o.outbound && o.token.empty())
    return report_error("doctor", Status::invalid_argument("--outbound needs --token (or LLMCTL_TOKEN): the listeners' token"));
  if (!o.address.empty()) {
    return report_error("doctor", Status::unimplemented(
                                      "--address needs the cluster control plane (issue #8); use --peers with `llmctl doctor --listen` on each node"));
  }
  netcheck::RealHostView host;
  netcheck::ProbeOptions probe;
  probe.node_name = host.hostname();
  probe.node_ip = o.node_ip;
  probe.state_dir = resolve_state_dir(global);
  if (!o.model.empty()) probe.model_dirs.push_back(o.model);

  std::vector<std::string> peers = split_list(o.peers);
  bool from_config = !o.config.empty();
  std::string ssh_note;
  if (from_config) {
    auto config = load_cluster_config(o.config);
    if (!config.is_ok()) return report_error("doctor", config.status().with_context(o.config));
    if (!o.local && !o.outbound && !o.listen && o.peers.empty()) return run_cluster_doctor(o, *config);
    probe.ports = config->ports;
    probe.env = config->env;
    const NodeConfig* self = find_self(*config, host);
    if (self != nullptr && probe.node_ip.empty()) probe.node_ip = self->node_ip;
    if (self != nullptr && !self->state_dir.empty() && global.state_dir.empty()) probe.state_dir = self->state_dir;
    for (const auto* node : config->nodes()) {
      if (node == self || (o.outbound && !o.peers.empty())) continue;
      std::string target = node->node_ip.empty() ? node->host : node->node_ip;
      if (std::find(peers.begin(), peers.end(), target) == peers.end()) peers.push_back(target);
    }
    for (const auto& m : config->models) {
      if (o.model.empty() && !m.path.empty()) probe.model_dirs.push_back(m.path);
    }
  }
  probe.peers = peers;

  std::string token = o.token;
  if (o.listen) {
    if (token.empty()) token = doctor::generate_token();
    doctor::DoctorServiceOptions service_options;
    service_options.probe = probe;
    service_options.token = token;
    // Test-only: lets integration tests stand up a peer that reports another version.
    if (const char* fake = std::getenv("LLMCTL_FAKE_VERSION")) service_options.version_override = fake;
    return run_listen(service_options, host);
  }

  (void)raise_open_file_limit();
  auto peer_check_options = [&] {
    doctor::PeerCheckOptions p;
    p.peers = peers;
    p.token = token;
    p.local = probe;
    p.model_path = o.model;
    p.deep = o.deep;
    return p;
  };
  if (o.outbound) {
    // The other hosts' listeners hold their ports; ours holds this host's, so no local checks here.
    doctor::PeerCheckOptions peer_options = peer_check_options();
    peer_options.outbound_only = true;
    return print_report(doctor::check_peers(host, peer_options, nullptr), o.json);
  }
  std::vector<netcheck::CheckResult> results = netcheck::run_local_checks(host, probe);
  if (!peers.empty() && !o.local) {
    if (token.empty()) {
      if (!from_config) return report_error("doctor", Status::invalid_argument("--peers needs --token (or LLMCTL_TOKEN)"));
      results.push_back({probe.node_name, "peer.connect", netcheck::CheckStatus::kSkip,
                         "no --token given, so the other nodes were not checked", "rerun with --token <token>"});
    } else {
      // Our own listeners, so peers can connect back (bind what is free; what a
      // local check found taken is reported there).
      doctor::DoctorServiceOptions service_options;
      service_options.probe = probe;
      service_options.token = token;
      auto service = doctor::DoctorService::start(service_options, host);
      doctor::PeerCheckOptions peer_options = peer_check_options();
      peer_options.missing_listener_is_skip = from_config && o.peers.empty();
      auto found = doctor::check_peers(host, peer_options, service.is_ok() ? service->get() : nullptr);
      results.insert(results.end(), found.begin(), found.end());
    }
  }
  return print_report(results, o.json);
}

}  // namespace

void register_doctor(CLI::App& app, CliContext& ctx) {
  auto o = std::make_shared<DoctorOptions>();
  CLI::App* cmd = app.add_subcommand("doctor", "Check ports, hostnames, NICs, GPUs and limits on this node or the cluster");
  cmd->add_option("config", o->config, "cluster.toml: check every host of it over SSH (as `llmctl up` reaches them)");
  cmd->add_option("--peers", o->peers, "Comma-separated peers (HOST or HOST:PORT) running `llmctl doctor --listen`");
  cmd->add_option("--address", o->address, "A running cluster's head (HOST:PORT) whose nodes to check");
  cmd->add_option("--token", o->token, "Cluster token for --listen, --peers and --address")->envname("LLMCTL_TOKEN");
  cmd->add_option("--model", o->model, "Model folder that must exist with the same content on every node");
  cmd->add_option("--node-ip-address", o->node_ip, "The address this node advertises (default: what its hostname resolves to)");
  cmd->add_flag("--listen", o->listen, "Open listeners on the cluster ports and answer peers' probes until Ctrl-C");
  cmd->add_flag("--deep", o->deep, "With --model: compare SHA-256 checksums, not only file sizes");
  cmd->add_flag("--json", o->json, "Print {\"checks\":[...],\"summary\":{...}}");
  cmd->add_flag("--local", o->local, "With cluster.toml: only this node's checks, with the file's ports and [env]");
  cmd->add_flag("--outbound", o->outbound,
                "With cluster.toml and --token: this node against the other hosts' running listeners only");
  cmd->add_flag("--accept-new-host-keys", o->accept_new_host_keys, "With cluster.toml: trust host keys seen for the first time");
  cmd->add_option("--connect-timeout", o->connect_timeout_s, "With cluster.toml: seconds to connect and authenticate per host")
      ->capture_default_str();
  cmd->footer(
      "Examples:\n"
      "  llmctl doctor                                   this node\n"
      "  llmctl doctor --listen --token T                on every other node, then:\n"
      "  llmctl doctor --peers lf002,lf003 --token T     reachability both ways, names, versions, clocks\n"
      "  llmctl doctor cluster.toml                      all of that on every host of the file, over SSH\n"
      "Exit status: 0 when nothing failed, 1 when a check failed, 2 on usage errors.");
  cmd->callback([&ctx, o] { ctx.action = [&ctx, o] { return run_doctor(ctx.global, *o); }; });
}

}  // namespace llmctl::cli
