// llmctl logs: one search over every node's logs (issue #11). Without a
// cluster it searches this node's state dir; in a cluster the head fans the
// query out to every agent and merges the answers by time.
#include <unistd.h>

#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <thread>
#include <tuple>

#include <fmt/color.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/cli_context.h"
#include "runtime/control/control_client.h"
#include "runtime/control/daemon.h"
#include "runtime/control/log_relay.h"
#include "runtime/logs/log_search.h"

namespace llmctl::cli {
namespace {

struct LogsOptions {
  std::string grep, level, since, until, address, token, config, tls_ca;
  std::vector<std::string> nodes, components;
  size_t tail = 0, max_lines = 1000;
  bool follow = false, json = false, ignore_case = false;
};

Result<logs::LogQuery> build_query(const LogsOptions& o) {
  logs::LogQuery q;
  q.grep = o.grep;
  q.ignore_case = o.ignore_case;
  q.nodes = o.nodes;
  q.components = o.components;
  q.tail = o.tail;
  q.max_lines = o.max_lines;
  if (!o.level.empty()) {
    auto level = logs::parse_log_level(o.level);
    if (!level) return Status::invalid_argument(fmt::format("--level '{}': expected debug, info, warn or error", o.level));
    q.min_level = level;
  }
  int64_t now = logs::local_now_ms();
  if (!o.since.empty()) {
    ASSIGN_OR_RETURN(int64_t since, logs::parse_time_spec(o.since, now, "--since"));
    q.since_ms = since;
  }
  if (!o.until.empty()) {
    ASSIGN_OR_RETURN(int64_t until, logs::parse_time_spec(o.until, now, "--until"));
    q.until_ms = until;
  }
  if (q.since_ms && q.until_ms && *q.since_ms > *q.until_ms)
    return Status::invalid_argument(fmt::format("--since {} is after --until {}", o.since, o.until));
  if (q.max_lines == 0) return Status::invalid_argument("--max-lines must be at least 1");
  // The pattern is checked before anything is searched: a typo fails fast.
  RETURN_IF_ERROR(logs::LogPattern::compile(q.grep, q.ignore_case).status());
  return q;
}

// Prints records as text ("node component | line", colored on a terminal) or JSON lines.
// What a search that printed no line, or hit --max-lines, says at its end
// (where: "in STATE_DIR" or "on N node(s)").
void print_search_end(bool truncated, std::size_t max_lines, bool nothing, const std::string& where,
                      uint64_t bytes_scanned) {
  if (truncated) {
    fmt::print(stderr, "llmctl logs: stopped after --max-lines {}; narrow the search (--since, --grep, --node) "
               "or raise --max-lines\n", max_lines);
  }
  if (nothing) {
    fmt::print(stderr, "llmctl logs: no matching lines {} ({:.1f} MB searched)\n", where,
               static_cast<double>(bytes_scanned) / 1e6);
  }
}

class RecordPrinter {
 public:
  explicit RecordPrinter(bool json) : json_(json), color_(!json && ::isatty(STDOUT_FILENO)) {}
  void print(const logs::LogRecord& r) const {
    if (json_) {
      fmt::print("{}\n", logs::to_json(r).dump());
      return;
    }
    if (!color_) {
      fmt::print("{} {} | {}\n", r.node, r.component, r.line);
      return;
    }
    static constexpr fmt::terminal_color kNodeColors[] = {fmt::terminal_color::cyan, fmt::terminal_color::magenta,
                                                          fmt::terminal_color::blue, fmt::terminal_color::green};
    auto node_color = kNodeColors[std::hash<std::string>{}(r.node) % 4];
    fmt::print(fmt::fg(node_color), "{}", r.node);
    fmt::print(" {} | ", r.component);
    if (r.level >= logs::LogLevel::kError) fmt::print(fmt::fg(fmt::terminal_color::red), "{}\n", r.line);
    else if (r.level == logs::LogLevel::kWarn) fmt::print(fmt::fg(fmt::terminal_color::yellow), "{}\n", r.line);
    else fmt::print("{}\n", r.line);
  }

 private:
  bool json_, color_;
};

int run_local(const GlobalOptions& global, const LogsOptions& o, const logs::LogQuery& query) {
  std::string state_dir = resolve_state_dir(global);
  // Without a cluster this node is the only one; its records name the host.
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::string node = host;
  if (!logs::node_selected(query, node)) {
    fmt::print(stderr, "llmctl logs: no node named {} here (this machine is {}; no cluster to ask)\n",
               fmt::join(query.nodes, ", "), node);
    return kExitFailure;
  }
  RecordPrinter printer(o.json);
  logs::LogQuery first = query;
  if (o.follow && first.tail == 0 && !first.since_ms) first.tail = 10;  // like tail -f
  auto result = logs::search_logs(state_dir, node, first);
  if (!result.is_ok()) return report_error("logs", result.status());
  for (const auto& w : result->warnings) fmt::print(stderr, "llmctl logs: warning: {}\n", w);
  for (const auto& r : result->records) printer.print(r);
  print_search_end(result->truncated, query.max_lines, result->records.empty() && !o.follow, "in " + state_dir,
                   result->bytes_scanned);
  if (!o.follow) return kExitOk;
  std::fflush(stdout);
  auto follower = logs::LogFollower::create(state_dir, node, query);
  if (!follower.is_ok()) return report_error("logs", follower.status());
  for (;;) {  // until interrupted
    for (const auto& r : follower->poll()) printer.print(r);
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}


// One round trip to the head: every selected node's matches, merged. Nodes
// that could not answer are printed to stderr by name; returns how many.
struct ClusterAnswer {
  std::vector<logs::LogRecord> records;
  bool truncated = false;
  std::vector<std::pair<std::string, std::string>> failed;  // node, why
  uint64_t bytes_scanned = 0;
  size_t num_nodes = 0;
};

Result<ClusterAnswer> ask_cluster(control::ControlClient& client, const logs::LogQuery& query) {
  ASSIGN_OR_RETURN(nlohmann::json reply, client.call("logs.search", nlohmann::json{{"query", logs::to_json(query)}},
                                                     std::chrono::milliseconds(20000)));
  ClusterAnswer a;
  ASSIGN_OR_RETURN(a.records, control::records_from_wire(reply.value("records", nlohmann::json::array())));
  a.truncated = reply.value("truncated", false);
  for (const auto& n : reply.value("nodes", nlohmann::json::array())) {
    ++a.num_nodes;
    if (!n.value("ok", false)) a.failed.emplace_back(n.value("name", "?"), n.value("error", "no answer"));
    a.bytes_scanned += n.value("bytes_scanned", uint64_t{0});
  }
  return a;
}

int run_cluster(const LogsOptions& o, const logs::LogQuery& query,
                const Result<std::unique_ptr<control::ControlClient>>& client) {
  RecordPrinter printer(o.json);
  logs::LogQuery first = query;
  if (o.follow && first.tail == 0 && !first.since_ms) first.tail = 10;
  auto answer = ask_cluster(**client, first);
  if (!answer.is_ok()) return report_error("logs", answer.status());
  for (const auto& r : answer->records) printer.print(r);
  std::map<std::string, std::string> failing;
  for (const auto& [node, why] : answer->failed) {
    fmt::print(stderr, "llmctl logs: node {}: {}\n", node, why);
    failing[node] = why;
  }
  print_search_end(answer->truncated, query.max_lines, answer->records.empty() && !o.follow,
                   fmt::format("on {} node(s)", answer->num_nodes - answer->failed.size()), answer->bytes_scanned);
  if (!o.follow) return answer->failed.empty() ? kExitOk : kExitFailure;

  // Follow: ask again every second for lines since shortly before the newest
  // one seen; lines already printed are remembered (by node, file, time and
  // text) for a few seconds so the overlap never prints twice.
  std::fflush(stdout);
  constexpr int64_t kOverlapMs = 3000;
  int64_t cursor = logs::local_now_ms();
  for (const auto& r : answer->records) cursor = std::max(cursor, r.time_ms);
  std::set<std::tuple<int64_t, std::string, std::string, std::string>> seen;
  for (const auto& r : answer->records) seen.emplace(r.time_ms, r.node, r.file, r.line);
  for (;;) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    logs::LogQuery next = query;
    next.tail = 0;
    next.since_ms = cursor - kOverlapMs;
    next.max_lines = std::max<size_t>(query.max_lines, 10000);
    auto more = ask_cluster(**client, next);
    if (!more.is_ok()) return report_error("logs", more.status().with_context("following"));
    std::map<std::string, std::string> now_failing(more->failed.begin(), more->failed.end());
    for (const auto& [node, why] : now_failing)
      if (failing.find(node) == failing.end()) fmt::print(stderr, "llmctl logs: node {}: {}\n", node, why);
    failing = std::move(now_failing);
    for (const auto& r : more->records) {
      if (!seen.emplace(r.time_ms, r.node, r.file, r.line).second) continue;
      printer.print(r);
      cursor = std::max(cursor, r.time_ms);
    }
    std::fflush(stdout);
    while (!seen.empty() && std::get<0>(*seen.begin()) < cursor - 2 * kOverlapMs) seen.erase(seen.begin());
  }
}

}  // namespace

void register_logs(CLI::App& app, CliContext& ctx) {
  auto o = std::make_shared<LogsOptions>();
  CLI::App* cmd = app.add_subcommand("logs", "Search every node's logs at once: llmctl logs --grep Gloo");
  cmd->add_option("--grep", o->grep, "Regular expression (PCRE syntax) a line must contain");
  cmd->add_flag("-i,--ignore-case", o->ignore_case, "Match --grep without regard to case");
  cmd->add_option("--node", o->nodes, "Only this node (repeatable)");
  cmd->add_option("--component", o->components,
                  "Only this component: head, agent, serve, job (every supervised process), job/NAME (repeatable)");
  cmd->add_option("--level", o->level, "Lowest level to show: debug, info, warn, error");
  cmd->add_option("--since", o->since, "Start time: 10m, 2h, 1d ago, or 2026-11-28T06:00:00, or 06:00:00 today");
  cmd->add_option("--until", o->until, "End time, same forms as --since");
  cmd->add_option("--tail", o->tail, "Only the last N matching lines");
  cmd->add_option("--max-lines", o->max_lines, "Stop after this many lines")->capture_default_str();
  cmd->add_flag("-f,--follow", o->follow, "Keep streaming new matching lines until interrupted");
  cmd->add_flag("--json", o->json, "One JSON object per line");
  cmd->add_option("--address", o->address, "Head HOST:PORT")->envname("LLMCTL_ADDRESS");
  cmd->add_option("--token", o->token, "Cluster token")->envname("LLMCTL_TOKEN");
  cmd->add_option("--config", o->config, "cluster.toml brought up with `llmctl up`");
  cmd->add_option("--tls-ca", o->tls_ca, "PEM file to check a TLS head's certificate against (default: this node's)");
  cmd->footer(
      "Lines come from every component's log file (head, agent, serve, ...) and from the captured\n"
      "stdout/stderr of the processes agents supervise (component job/NAME), where NCCL and Gloo print.\n"
      "Examples:\n"
      "  llmctl logs --grep 'Gloo|NCCL' --since 10m\n"
      "  llmctl logs --level warn --node lf002 --tail 50\n"
      "  llmctl logs --component job --follow\n"
      "In a cluster (this node joined one, or --address) the head asks every node; a node that cannot\n"
      "answer is named on stderr and the exit code is 1. Without a cluster, this node's state dir is searched.");
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      auto query = build_query(*o);
      if (!query.is_ok()) return report_error("logs", query.status());
      if (!o->config.empty())
        return report_error("logs", Status::unimplemented("--config needs `llmctl up` (issue #10); use --address"));
      // A cluster when one is named or this node belongs to one; else this node alone.
      control::NodePaths paths(resolve_state_dir(ctx.global));
      if (!o->address.empty()) {
        auto access = control::resolve_cluster_access(o->address, o->token, o->tls_ca, paths);
        if (!access.is_ok()) return report_error("logs", access.status());
        auto client = control::connect_to(*access, std::chrono::milliseconds(3000));
        if (!client.is_ok())
          return report_error("logs", client.status().with_context(
                                          fmt::format("cannot reach the head at {}", access->address)));
        return run_cluster(*o, *query, client);
      }
      if (auto access = control::resolve_cluster_access("", o->token, o->tls_ca, paths); access.is_ok()) {
        // The connection that shows the head answers is the one the search uses.
        if (auto client = control::connect_to(*access, std::chrono::milliseconds(1500)); client.is_ok())
          return run_cluster(*o, *query, client);
        fmt::print(stderr, "llmctl logs: the head at {} does not answer; searching this node only\n",
                   access->address);
      }
      return run_local(ctx.global, *o, *query);
    };
  });
}

}  // namespace llmctl::cli
