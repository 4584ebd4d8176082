// llmctl up: bring a whole cluster up from cluster.toml over SSH (issue #10).
// The work is remote::cluster_up; this file maps flags, prompts and prints.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/cli_context.h"
#include "config/cluster_config.h"
#include "runtime/remote/cluster_launcher.h"

namespace llmctl::cli {
namespace {

struct UpOptions {
  std::string config;
  bool yes = false, dry_run = false, accept_new_host_keys = false, json = false, skip_doctor = false;
  double timeout_s = 120, connect_timeout_s = 10;
};

nlohmann::json report_json(const remote::LaunchReport& r) {
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& n : r.nodes)
    nodes.push_back({{"host", n.host}, {"role", n.role}, {"address", n.address}, {"action", n.action},
                     {"uploaded", n.uploaded}, {"state", n.state}});
  nlohmann::json models = nlohmann::json::array();
  for (const auto& m : r.models)
    models.push_back({{"name", m.name}, {"action", m.action}, {"url", m.url}, {"port", m.port}, {"tp", m.tp},
                      {"pid", m.pid}, {"log_file", m.log_file}, {"reason", m.reason}});
  return {{"cluster", r.cluster},          {"ok", r.errors.empty() && !r.aborted},
          {"changed", r.changed},          {"head_address", r.head_address},
          {"dashboard_url", r.dashboard_url}, {"api_url", r.api_url},
          {"token_file", r.token_file},    {"nodes", nodes},
          {"models", models},
          {"notices", r.notices},          {"errors", r.errors},
          {"failed_stage", r.failed_stage}};
}

// Asks on a terminal; without one (scripts) the flags decide: going on needs --yes.
bool ask(const std::string& plan, const char* question) {
  fmt::print("{}\n{} [y/N] ", plan, question);
  std::fflush(stdout);
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  return answer == "y" || answer == "Y" || answer == "yes";
}

int run_up(const UpOptions& o, const GlobalOptions& global) {
  if (o.timeout_s <= 0 || o.connect_timeout_s <= 0)
    return report_error("up", Status::invalid_argument("--timeout and --connect-timeout must be positive"));
  auto config = load_cluster_config(o.config);
  if (!config.is_ok()) return report_error("up", config.status());
  remote::LaunchOptions lo;
  lo.dry_run = o.dry_run;
  lo.accept_new_host_keys = o.accept_new_host_keys;
  lo.timeout_s = o.timeout_s;
  lo.connect_timeout_s = o.connect_timeout_s;
  lo.local_state_dir = resolve_state_dir(global);
  lo.skip_doctor = o.skip_doctor;
  {
    std::ifstream in(o.config, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    lo.config_text = text.str();
  }
  // Progress goes to stderr with --json so stdout stays one JSON document.
  std::FILE* progress = o.json ? stderr : stdout;
  lo.print = [progress](const std::string& line) {
    fmt::print(progress, "{}\n", line);
    std::fflush(progress);
  };
  if (!o.yes && !o.dry_run) {
    if (!::isatty(STDIN_FILENO)) {
      lo.confirm = [](const std::string& plan) {
        fmt::print(stderr, "{}\nllmctl up: not a terminal to confirm on; pass --yes to go ahead\n", plan);
        return false;
      };
    } else {
      lo.confirm = [](const std::string& plan) { return ask(plan, "Go ahead?"); };
    }
  }
  remote::LaunchReport r = remote::cluster_up(*config, lo);
  for (const auto& n : r.notices) fmt::print(stderr, "llmctl up: notice: {}\n", n);
  for (const auto& e : r.errors) fmt::print(stderr, "llmctl up: {}\n", e);
  if (o.json) {
    fmt::print("{}\n", report_json(r).dump(2));
  } else if ((r.errors.empty() || r.failed_stage == "models") && !r.aborted && !o.dry_run) {
    size_t num_active = 0;
    for (const auto& n : r.nodes) num_active += n.action.rfind("stopped", 0) != 0;
    fmt::print("\nCluster \"{}\" is up{}: {} node(s) Active.\n", r.cluster, r.changed ? "" : "; nothing changed",
               num_active);
    for (const auto& n : r.nodes)
      if (n.role != "worker" || n.action.rfind("stopped", 0) != 0)
        fmt::print("  {:<16} {:<6} {:<15} {}\n", n.host, n.role, n.address, n.action);
    for (const auto& n : r.nodes)
      if (n.action.rfind("stopped", 0) == 0) fmt::print("  {:<16} {:<6} {:<15} {}\n", n.host, n.role, n.address, n.action);
    fmt::print("Control plane: {}\nDashboard:     {}\n", r.head_address, r.dashboard_url);
    std::vector<const remote::ModelOutcome*> served;
    for (const auto& m : r.models)
      if (!m.url.empty() && m.action != "failed" && m.action.rfind("refused", 0) != 0) served.push_back(&m);
    if (served.empty()) {
      fmt::print("OpenAI API:    {} (once a model is served)\n", r.api_url);
    } else {
      fmt::print("OpenAI API:    one port per model, [ports] api + its place in the file:\n");
      for (const auto* m : served)
        fmt::print("  {:<16} {} (tp {}, {}; log {})\n", m->name, m->url, m->tp, m->action, m->log_file);
    }
    for (const auto& m : r.models)
      if (m.url.empty() || m.action == "failed" || m.action.rfind("refused", 0) == 0)
        fmt::print("  {:<16} {}\n", m.name, m.action);
    fmt::print("Token: kept in {} (0600); `llmctl nodes --config {}` uses it.\n", r.token_file, o.config);
  }
  if (!r.errors.empty()) {
    if (r.failed_stage == "pre-flight")
      fmt::print(stderr, "llmctl up: pre-flight failed on {} host(s); nothing was started or changed anywhere\n",
                 r.errors.size());
    if (r.failed_stage == "doctor")
      fmt::print(stderr, "llmctl up: the doctor's checks failed (above); nothing was started. Fix them, or pass "
                         "--skip-doctor to start anyway\n");
    return kExitFailure;
  }
  if (r.aborted) {
    fmt::print(stderr, "llmctl up: not confirmed; nothing was changed\n");
    return kExitFailure;
  }
  return kExitOk;
}

// Hidden: GET a path of a server on this host and print its HTTP status (0:
// no answer); exit 0 on 200. `up` polls a model's /health with it on the head,
// where curl may be missing.
void register_http_status(CLI::App& app, CliContext& ctx) {
  struct Options {
    std::string host = "127.0.0.1", path = "/health";
    int port = 8000;
    double timeout_s = 2;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("http-status", "print the HTTP status of GET PATH on this host");
  cmd->group("");
  cmd->add_option("--host", o->host);
  cmd->add_option("--port", o->port);
  cmd->add_option("--path", o->path);
  cmd->add_option("--timeout", o->timeout_s);
  cmd->callback([&ctx, o] {
    ctx.action = [o] {
      int code = remote::http_status(o->host, o->port, o->path, o->timeout_s);
      fmt::print("{}\n", code);
      return code == 200 ? kExitOk : kExitFailure;
    };
  });
}

}  // namespace

void register_up(CLI::App& app, CliContext& ctx) {
  auto o = std::make_shared<UpOptions>();
  CLI::App* cmd = app.add_subcommand("up", "Bring up the cluster described by cluster.toml over SSH (idempotent)");
  cmd->add_option("config", o->config, "cluster.toml")->required();
  cmd->add_flag("-y,--yes", o->yes, "Do not ask for confirmation");
  cmd->add_flag("--dry-run", o->dry_run, "Print what would be done and change nothing");
  cmd->add_flag("--accept-new-host-keys", o->accept_new_host_keys, "Trust host keys seen for the first time");
  cmd->add_option("--timeout", o->timeout_s, "Seconds to wait for every node to be Active")->capture_default_str();
  cmd->add_option("--connect-timeout", o->connect_timeout_s, "Seconds to connect and authenticate per host")
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "Print a JSON summary (progress goes to stderr)");
  cmd->add_flag("--skip-doctor", o->skip_doctor, "Do not run the doctor's local checks on the hosts before starting");
  cmd->add_option("--state-dir", ctx.global.state_dir, "Where this machine keeps the cluster's token (same as the global flag)");
  cmd->callback([&ctx, o] { ctx.action = [&ctx, o] { return run_up(*o, ctx.global); }; });
  register_http_status(app, ctx);
}

}  // namespace llmctl::cli
