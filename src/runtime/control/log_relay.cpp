#include "runtime/control/log_relay.h"

#include <atomic>
#include <thread>

#include <fmt/format.h>

#include "common/logging.h"

namespace llmctl::control {
namespace {

constexpr int kMaxConcurrentSearches = 4;
std::atomic<int> g_searches_running{0};

// Everything the head gathers for one client request; lives until the last
// node answered or the deadline passed. Touched only on the head's io thread.
struct Gather {
  std::shared_ptr<transport::Channel> client;
  std::uint64_t id = 0;
  logs::LogQuery query;
  std::size_t max_reply_bytes = 0;
  std::vector<logs::LogSearchResult> parts;
  nlohmann::json nodes = nlohmann::json::array();
  std::size_t remaining = 0;
  bool replied = false;

  void finish() {
    if (replied) return;
    replied = true;
    logs::LogSearchResult merged = logs::merge_by_time(std::move(parts), query);
    bool cut = false;
    nlohmann::json records = records_to_wire(merged.records, max_reply_bytes, cut);
    client->reply(id, nlohmann::json{{"records", std::move(records)},
                                     {"truncated", merged.truncated || cut},
                                     {"nodes", nodes}});
  }
};

}  // namespace

nlohmann::json records_to_wire(const std::vector<logs::LogRecord>& records, std::size_t max_bytes, bool& truncated) {
  nlohmann::json out = nlohmann::json::array();
  std::size_t bytes = 0;
  for (const auto& r : records) {
    nlohmann::json j{{"t", r.time_ms}, {"l", std::string(logs::log_level_name(r.level))},
                     {"n", r.node},    {"c", r.component},
                     {"p", r.pid},     {"f", r.file},
                     {"line", r.line}};
    // Room for JSON escaping and the envelope around the records.
    bytes += r.line.size() * 2 + r.node.size() + r.component.size() + r.file.size() + 64;
    if (bytes > max_bytes) {
      truncated = true;
      break;
    }
    out.push_back(std::move(j));
  }
  return out;
}

Result<std::vector<logs::LogRecord>> records_from_wire(const nlohmann::json& j) {
  if (!j.is_array()) return Status::invalid_argument("log records: not an array");
  std::vector<logs::LogRecord> out;
  out.reserve(j.size());
  try {
    for (const auto& e : j) {
      logs::LogRecord r;
      std::string line = e.at("line").get<std::string>();
      if (!logs::parse_log_line(line, r)) r.message = line;
      r.time_ms = e.at("t").get<int64_t>();
      auto level = logs::parse_log_level(e.at("l").get<std::string>());
      r.level = level.value_or(logs::LogLevel::kInfo);
      r.node = e.at("n").get<std::string>();
      r.component = e.at("c").get<std::string>();
      r.pid = e.value("p", 0);
      r.file = e.value("f", "");
      r.line = std::move(line);
      out.push_back(std::move(r));
    }
  } catch (const nlohmann::json::exception& ex) {
    return Status::invalid_argument(fmt::format("log records: {}", ex.what()));
  }
  return out;
}

void relay_log_search(const std::shared_ptr<transport::Channel>& client, std::uint64_t id, const nlohmann::json& body,
                      std::vector<LogTarget> targets, std::chrono::milliseconds timeout, std::size_t max_reply_bytes) {
  auto query = logs::log_query_from_json(body.value("query", nlohmann::json::object()));
  if (!query.is_ok()) return client->reply(id, query.status());
  auto g = std::make_shared<Gather>();
  g->client = client;
  g->id = id;
  g->query = *query;
  g->max_reply_bytes = max_reply_bytes;
  for (const auto& n : query->nodes) {
    bool known = false;
    for (const auto& t : targets) known = known || t.name == n || t.node_id == n;
    if (!known) g->nodes.push_back({{"name", n}, {"ok", false}, {"error", "no node of that name in this cluster"}});
  }
  std::vector<LogTarget> asked;
  for (auto& t : targets) {
    if (!logs::node_selected(*query, t.name) && !logs::node_selected(*query, t.node_id)) continue;
    if (!t.active || !t.channel || !t.channel->is_open()) {
      std::string why = !t.active ? fmt::format("node is Dead ({}); its logs could not be searched",
                                                t.reason.empty() ? "no reason recorded" : t.reason)
                                  : "the node's agent is not connected; its logs could not be searched";
      g->nodes.push_back({{"name", t.name}, {"node_id", t.node_id}, {"ok", false}, {"error", why}});
      continue;
    }
    asked.push_back(std::move(t));
  }
  g->remaining = asked.size();
  if (asked.empty()) return g->finish();
  nlohmann::json request{{"query", logs::to_json(*query)}};
  for (const auto& t : asked) {
    std::string name = t.name, node_id = t.node_id;
    t.channel->request("logs.search", request, timeout, [g, name, node_id](Result<nlohmann::json> r) {
      nlohmann::json entry{{"name", name}, {"node_id", node_id}};
      if (!r.is_ok()) {
        entry["ok"] = false;
        entry["error"] = r.status().message();
      } else {
        auto records = records_from_wire(r->value("records", nlohmann::json::array()));
        if (!records.is_ok()) {
          entry["ok"] = false;
          entry["error"] = records.status().message();
        } else {
          logs::LogSearchResult part;
          part.records = std::move(*records);
          part.truncated = r->value("truncated", false);
          part.bytes_scanned = r->value("bytes_scanned", uint64_t{0});
          entry["ok"] = true;
          entry["bytes_scanned"] = part.bytes_scanned;
          entry["num_records"] = part.records.size();
          if (r->contains("warnings")) entry["warnings"] = (*r)["warnings"];
          g->parts.push_back(std::move(part));
        }
      }
      g->nodes.push_back(std::move(entry));
      if (--g->remaining == 0) g->finish();
    });
  }
}

void answer_log_search(asio::io_context& io, const std::shared_ptr<transport::Channel>& channel, std::uint64_t id,
                       const nlohmann::json& body, std::string state_dir, std::string node_name,
                       std::size_t max_reply_bytes) {
  auto query = logs::log_query_from_json(body.value("query", nlohmann::json::object()));
  if (!query.is_ok()) return channel->reply(id, query.status());
  if (g_searches_running.fetch_add(1) >= kMaxConcurrentSearches) {
    g_searches_running.fetch_sub(1);
    return channel->reply(id, Status::unavailable(fmt::format(
                                  "node {} is already running {} log searches; try again", node_name,
                                  kMaxConcurrentSearches)));
  }
  std::weak_ptr<transport::Channel> weak = channel;
  std::thread([&io, weak, id, q = *query, state_dir = std::move(state_dir), node_name = std::move(node_name),
               max_reply_bytes] {
    auto result = logs::search_logs(state_dir, node_name, q);
    Result<nlohmann::json> reply = Status::internal("unset");
    if (!result.is_ok()) {
      reply = result.status();
    } else {
      bool cut = false;
      nlohmann::json records = records_to_wire(result->records, max_reply_bytes, cut);
      reply = nlohmann::json{{"records", std::move(records)},
                             {"truncated", result->truncated || cut},
                             {"bytes_scanned", result->bytes_scanned},
                             {"warnings", result->warnings}};
    }
    g_searches_running.fetch_sub(1);
    asio::post(io, [weak, id, reply = std::move(reply)]() mutable {
      if (auto ch = weak.lock(); ch && ch->is_open()) ch->reply(id, std::move(reply));
    });
  }).detach();
}

}  // namespace llmctl::control
