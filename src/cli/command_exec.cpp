// llmctl exec: run a command on the cluster's hosts in parallel (issue #10).
// One SSH session and one thread per host; each host's output is printed as
// one block, every line prefixed by its node, when that host is done.
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/cli_context.h"
#include "config/cluster_config.h"
#include "runtime/remote/ssh_session.h"

namespace llmctl::cli {
namespace {

struct ExecOptions {
  std::string config;
  std::vector<std::string> nodes;
  std::vector<std::string> command;
  bool json = false, accept_new_host_keys = false;
  double timeout_s = 0, connect_timeout_s = 10;
};

struct HostOutcome {
  std::string node;
  remote::CommandResult result;
  Status error;  // connecting or running failed; result is then partial at best
  bool ran = false;
};

// Like OpenSSH: the words are joined by spaces and the remote shell parses them.
std::string join_command(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

void print_prefixed(std::FILE* to, const std::string& node, const std::string& text) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    fmt::print(to, "{}: {}\n", node, std::string_view(text).substr(start, end - start));
    start = end + 1;
  }
}

HostOutcome run_on(const NodeConfig& node, const ExecOptions& o, const std::string& command) {
  HostOutcome out;
  out.node = node.host;
  remote::SshOptions ssh;
  ssh.host = node.host;
  ssh.port = node.ssh.port;
  ssh.user = node.ssh.user;
  ssh.key_file = node.ssh.key;
  ssh.accept_new_host_keys = o.accept_new_host_keys;
  ssh.connect_timeout_s = o.connect_timeout_s;
  auto session = remote::SshSession::connect(ssh);
  if (!session.is_ok()) {
    out.error = session.status();
    return out;
  }
  auto result = (*session)->run(command, o.timeout_s);
  if (!result.is_ok()) {
    out.error = result.status();
    return out;
  }
  out.result = std::move(result).value();
  out.ran = true;
  return out;
}

int run_exec(const ExecOptions& o) {
  if (o.command.empty()) return report_error("exec", Status::invalid_argument("no command given; usage: llmctl exec cluster.toml -- CMD..."));
  if (o.connect_timeout_s <= 0) return report_error("exec", Status::invalid_argument("--connect-timeout must be positive"));
  auto config = load_cluster_config(o.config);
  if (!config.is_ok()) return report_error("exec", config.status());
  std::vector<const NodeConfig*> selected;
  for (const NodeConfig* n : config->nodes())
    if (o.nodes.empty() || std::find(o.nodes.begin(), o.nodes.end(), n->host) != o.nodes.end()) selected.push_back(n);
  for (const auto& wanted : o.nodes) {
    bool known = false;
    for (const NodeConfig* n : config->nodes()) known = known || n->host == wanted;
    if (!known)
      return report_error("exec", Status::not_found(fmt::format("--node {}: no such host in {}", wanted, o.config)));
  }
  std::string command = join_command(o.command);

  std::vector<HostOutcome> outcomes(selected.size());
  std::mutex print_mutex;
  std::vector<std::thread> threads;
  for (size_t i = 0; i < selected.size(); ++i) {
    threads.emplace_back([&, i] {
      outcomes[i] = run_on(*selected[i], o, command);
      if (o.json) return;
      const HostOutcome& h = outcomes[i];
      std::lock_guard lock(print_mutex);
      print_prefixed(stdout, h.node, h.result.stdout_text);
      std::fflush(stdout);
      print_prefixed(stderr, h.node, h.result.stderr_text);
      if (!h.error.is_ok())
        fmt::print(stderr, "llmctl exec: {}: {}\n", h.node, h.error.message());
      else if (h.result.exit_code != 0)
        fmt::print(stderr, "llmctl exec: {}: {}\n", h.node,
                   h.result.exit_code < 0 ? std::string("command ended without an exit status (killed by a signal?)")
                                          : fmt::format("command exited with status {}", h.result.exit_code));
      std::fflush(stderr);
    });
  }
  for (auto& t : threads) t.join();

  bool all_ok = true;
  for (const auto& h : outcomes) all_ok = all_ok && h.error.is_ok() && h.result.exit_code == 0;
  if (o.json) {
    nlohmann::json hosts = nlohmann::json::array();
    for (const auto& h : outcomes) {
      hosts.push_back({{"node", h.node},
                       {"exit_code", h.ran && h.result.exit_code >= 0 ? nlohmann::json(h.result.exit_code) : nlohmann::json()},
                       {"stdout", h.result.stdout_text},
                       {"stderr", h.result.stderr_text},
                       {"error", h.error.is_ok() ? nlohmann::json() : nlohmann::json(h.error.message())}});
    }
    fmt::print("{}\n", hosts.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  return all_ok ? kExitOk : kExitFailure;
}

}  // namespace

void register_exec(CLI::App& app, CliContext& ctx) {
  auto o = std::make_shared<ExecOptions>();
  CLI::App* cmd = app.add_subcommand("exec", "Run a command on the cluster's hosts in parallel: llmctl exec cluster.toml -- CMD");
  cmd->add_option("config", o->config, "cluster.toml")->required();
  cmd->add_option("--node", o->nodes, "Only this host, as cluster.toml names it (repeatable)");
  cmd->add_flag("--json", o->json, "Print [{node, exit_code, stdout, stderr, error}] instead of prefixed lines");
  cmd->add_flag("--accept-new-host-keys", o->accept_new_host_keys, "Trust host keys seen for the first time and record them in known_hosts");
  cmd->add_option("--timeout", o->timeout_s, "Seconds the command may run on each host (0: no limit)")->capture_default_str();
  cmd->add_option("--connect-timeout", o->connect_timeout_s, "Seconds to connect and authenticate per host")->capture_default_str();
  cmd->add_option("command", o->command, "The command, after --");
  cmd->callback([&ctx, o] { ctx.action = [o] { return run_exec(*o); }; });
}

}  // namespace llmctl::cli
