#include "runtime/control/cluster_report.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <vector>

#include <fmt/format.h>

namespace llmctl::control {
namespace {

constexpr double kGiB = 1024.0 * 1024 * 1024;

std::string clock_time(std::int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string amount(const std::string& name, double v) {
  if (name == "memory") return fmt::format("{:.1f}GiB", v / kGiB);
  return fmt::format("{:.1f}", v);
}

// "gpu0 45% 10.2/80.0GiB gpu1 ..." from a heartbeat's usage; "-" without GPUs.
std::string gpu_usage_text(const nlohmann::json& usage) {
  if (!usage.is_object() || !usage.contains("gpus") || !usage["gpus"].is_array() || usage["gpus"].empty()) return "-";
  std::vector<std::string> parts;
  for (const auto& g : usage["gpus"]) {
    parts.push_back(fmt::format("gpu{} {}% {:.1f}/{:.1f}GiB", g.value("index", 0), g.value("utilization_percent", 0),
                                static_cast<double>(g.value("memory_used_bytes", std::uint64_t{0})) / kGiB,
                                static_cast<double>(g.value("memory_total_bytes", std::uint64_t{0})) / kGiB));
  }
  return fmt::format("{}", fmt::join(parts, " "));
}

std::string short_resources(const nlohmann::json& r) {
  std::vector<std::string> parts;
  for (auto it = r.begin(); it != r.end(); ++it) {
    if (!it->is_number()) continue;
    parts.push_back(fmt::format("{}={}", it.key(), it.key() == "memory" ? amount("memory", it->get<double>())
                                                                         : fmt::format("{:g}", it->get<double>())));
  }
  return fmt::format("{}", fmt::join(parts, ","));
}

}  // namespace

std::string format_status(const nlohmann::json& s) {
  std::string out;
  const std::string rule(60, '-');
  out += fmt::format("======== Cluster status: {} UTC ========\n", clock_time(s.value("now_ms", std::int64_t{0})));
  const auto& head = s.value("head", nlohmann::json::object());
  out += fmt::format("Head: {}   llmctl {}   dead after {} ms without heartbeats\n", head.value("address", "?"),
                     head.value("version", "?"), head.value("dead_after_ms", 0));
  out += fmt::format("Node status\n{}\n", rule);
  std::map<std::string, std::vector<nlohmann::json>> by_state;
  for (const auto& n : s.value("nodes", nlohmann::json::array())) by_state[n.value("state", "?")].push_back(n);
  for (const char* state : {"Active", "Dead"}) {
    const auto& list = by_state[state];
    out += fmt::format("{}:\n", state);
    if (list.empty()) out += " (no nodes)\n";
    if (!list.empty()) out += fmt::format(" {} node{}\n", list.size(), list.size() == 1 ? "" : "s");
    for (const auto& n : list) {
      std::string extra;
      if (std::string(state) == "Dead") extra = fmt::format("  reason: {}", n.value("reason", ""));
      out += fmt::format("  {} {} {} ({}){}\n", n.value("node_id", ""), n.value("name", ""), n.value("address", ""),
                         n.value("role", ""), extra);
    }
  }
  out += fmt::format("\nResources\n{}\nUsage:\n", rule);
  const auto& res = s.value("resources", nlohmann::json::object());
  const auto& total = res.value("total", nlohmann::json::object());
  const auto& used = res.value("used", nlohmann::json::object());
  // CPU, GPU, memory first, then custom resources in name order (as ray status does).
  std::vector<std::string> names;
  for (const char* fixed : {"CPU", "GPU", "memory"}) {
    if (total.contains(fixed)) names.push_back(fixed);
  }
  for (auto it = total.begin(); it != total.end(); ++it) {
    if (it.key() != "CPU" && it.key() != "GPU" && it.key() != "memory") names.push_back(it.key());
  }
  if (names.empty()) out += " (no active nodes)\n";
  for (const auto& name : names) {
    double t = total.value(name, 0.0), u = used.value(name, 0.0);
    out += fmt::format(" {}/{} {}\n", amount(name, u), amount(name, t), name);
  }
  out += "\nHost usage (from heartbeats):\n";
  for (const auto& n : s.value("nodes", nlohmann::json::array())) {
    if (n.value("state", "") != "Active" || !n.contains("usage")) continue;
    const auto& u = n["usage"];
    std::string gpus = gpu_usage_text(u);
    out += fmt::format("  {:<16} cpu {:5.1f}%  memory {:.1f}/{:.1f}GiB  {}\n", n.value("name", ""),
                       u.value("cpu_percent", 0.0), static_cast<double>(u.value("memory_used_bytes", std::uint64_t{0})) / kGiB,
                       static_cast<double>(u.value("memory_total_bytes", std::uint64_t{0})) / kGiB,
                       gpus == "-" ? "no GPUs reported" : gpus);
  }
  out += "\nPending demands:\n";
  const auto& pending = s.value("pending", nlohmann::json::array());
  if (pending.empty()) out += " (no resource demands)\n";
  for (const auto& p : pending) {
    std::vector<std::string> bundles;
    for (const auto& b : p.value("bundles", nlohmann::json::array())) bundles.push_back(fmt::format("{{{}}}", short_resources(b)));
    out += fmt::format(" {} {} ({}): {}\n   reason: {}\n", p.value("group_id", ""), p.value("name", ""),
                       p.value("strategy", ""), fmt::join(bundles, " "), p.value("reason", ""));
  }
  out += "\nPlacement groups:\n";
  int num_groups = 0;
  for (const auto& g : s.value("groups", nlohmann::json::array())) {
    if (g.value("state", "") != "placed") continue;
    ++num_groups;
    out += fmt::format(" {} {} ({}):\n", g.value("group_id", ""), g.value("name", ""), g.value("strategy", ""));
    int i = 0;
    for (const auto& b : g.value("bundles", nlohmann::json::array())) {
      std::string node = b.value("node_id", "");
      for (const auto& n : s.value("nodes", nlohmann::json::array())) {
        if (n.value("node_id", "") == node) node += fmt::format(" ({} {})", n.value("name", ""), n.value("address", ""));
      }
      std::vector<std::string> indices;
      for (const auto& x : b.value("gpu_indices", nlohmann::json::array())) {
        if (x.is_number_integer()) indices.push_back(std::to_string(x.get<int>()));
      }
      std::string gpus = indices.empty() ? "" : fmt::format(" gpus {}", fmt::join(indices, ","));
      out += fmt::format("   [{}] node {} {}{} pid {} restarts {} exit {}\n", i++, node, b.value("state", ""), gpus,
                         b.value("pid", 0), b.value("num_restarts", 0), b.value("exit_code", 0));
    }
  }
  if (num_groups == 0) out += " (none)\n";
  out += "\nRecent failures:\n";
  const auto& failures = s.value("failures", nlohmann::json::array());
  if (failures.empty()) out += " (no failures)\n";
  std::size_t start = failures.size() > 10 ? failures.size() - 10 : 0;
  for (std::size_t i = start; i < failures.size(); ++i) {
    out += fmt::format(" {} {}\n", clock_time(failures[i].value("time_ms", std::int64_t{0})), failures[i].value("what", ""));
  }
  return out;
}

nlohmann::json nodes_json(const nlohmann::json& s) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& n : s.value("nodes", nlohmann::json::array())) {
    out.push_back({{"node_id", n.value("node_id", "")},
                   {"name", n.value("name", "")},
                   {"address", n.value("address", "")},
                   {"role", n.value("role", "")},
                   {"state", n.value("state", "")},
                   {"reason", n.value("reason", "")},
                   {"resources", n.value("resources", nlohmann::json::object())},
                   {"used", n.value("used", nlohmann::json::object())},
                   {"heartbeat_age_ms", n.contains("heartbeat_age_ms") ? n["heartbeat_age_ms"] : nlohmann::json()},
                   {"version", n.value("version", "")},
                   {"usage", n.value("usage", nlohmann::json::object())}});
  }
  return out;
}

std::string format_nodes(const nlohmann::json& s) {
  std::vector<std::vector<std::string>> rows = {
      {"NODE_ID", "NAME", "ADDRESS", "ROLE", "STATE", "RESOURCES", "HEARTBEAT_AGE", "GPU_USE", "VERSION"}};
  for (const auto& n : nodes_json(s)) {
    std::string age = n["heartbeat_age_ms"].is_number() ? fmt::format("{}ms", n["heartbeat_age_ms"].get<std::int64_t>()) : "-";
    std::string state = n.value("state", "");
    if (state == "Dead" && !n.value("reason", "").empty()) state = fmt::format("{}({})", state, n.value("reason", ""));
    rows.push_back({n.value("node_id", ""), n.value("name", ""), n.value("address", ""), n.value("role", ""), state,
                    short_resources(n["resources"]), age, gpu_usage_text(n["usage"]), n.value("version", "")});
  }
  std::vector<std::size_t> width(rows[0].size(), 0);
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    out += line;
    out += "\n";
  }
  return out;
}

}  // namespace llmctl::control
