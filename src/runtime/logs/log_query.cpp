#include "runtime/logs/log_query.h"

#include <ctime>

#include <algorithm>
#include <charconv>
#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace llmctl::logs {

int64_t local_now_ms() {
  auto now = std::chrono::system_clock::now();
  int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ms / 1000);
  struct tm local {};
  localtime_r(&secs, &local);
  return ms + static_cast<int64_t>(local.tm_gmtoff) * 1000;
}

Result<int64_t> parse_time_spec(std::string_view text, int64_t now_ms, std::string_view flag) {
  auto bad = [&] {
    return Status::invalid_argument(fmt::format(
        "{} '{}': expected a duration before now (90s, 10m, 2h, 1d) or a time "
        "(2026-11-28 06:00:00, 2026-11-28T06:00:00, 06:00:00)",
        flag, text));
  };
  if (text.empty()) return bad();
  if (auto t = parse_log_time(text); t && (text.size() == 19 || text.size() == 23)) return *t;
  if (text.size() == 8 && text[2] == ':' && text[5] == ':') {
    std::string today = format_log_time(now_ms).substr(0, 10);
    if (auto t = parse_log_time(today + " " + std::string(text))) return *t;
    return bad();
  }
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || n < 0) return bad();
  std::string_view unit(ptr, static_cast<size_t>(text.data() + text.size() - ptr));
  int64_t scale = 0;
  if (unit == "ms") scale = 1;
  else if (unit == "s") scale = 1000;
  else if (unit == "m") scale = 60'000;
  else if (unit == "h") scale = 3'600'000;
  else if (unit == "d") scale = 86'400'000;
  else return bad();
  return now_ms - n * scale;
}

bool node_selected(const LogQuery& q, std::string_view node) {
  return q.nodes.empty() || std::find(q.nodes.begin(), q.nodes.end(), node) != q.nodes.end();
}

bool component_selected(const LogQuery& q, std::string_view component) {
  if (q.components.empty()) return true;
  for (const auto& c : q.components) {
    if (component == c) return true;
    // "job" selects job/<bundle>: every captured child output.
    if (component.size() > c.size() && component.substr(0, c.size()) == c && component[c.size()] == '/')
      return true;
  }
  return false;
}

bool record_selected(const LogQuery& q, const LogRecord& r) {
  if (q.min_level && r.level < *q.min_level) return false;
  if (q.since_ms && r.time_ms < *q.since_ms) return false;
  if (q.until_ms && r.time_ms > *q.until_ms) return false;
  return component_selected(q, r.component);
}

nlohmann::json to_json(const LogQuery& q) {
  nlohmann::json j{{"grep", q.grep},
                   {"ignore_case", q.ignore_case},
                   {"nodes", q.nodes},
                   {"components", q.components},
                   {"tail", q.tail},
                   {"max_lines", q.max_lines}};
  if (q.min_level) j["min_level"] = std::string(log_level_name(*q.min_level));
  if (q.since_ms) j["since_ms"] = *q.since_ms;
  if (q.until_ms) j["until_ms"] = *q.until_ms;
  return j;
}

Result<LogQuery> log_query_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return Status::invalid_argument("log query: not a JSON object");
  LogQuery q;
  try {
    q.grep = j.value("grep", "");
    q.ignore_case = j.value("ignore_case", false);
    q.nodes = j.value("nodes", std::vector<std::string>{});
    q.components = j.value("components", std::vector<std::string>{});
    q.tail = j.value("tail", size_t{0});
    q.max_lines = j.value("max_lines", size_t{1000});
    if (j.contains("min_level")) {
      auto level = parse_log_level(j.at("min_level").get<std::string>());
      if (!level) return Status::invalid_argument("log query: unknown min_level");
      q.min_level = level;
    }
    if (j.contains("since_ms")) q.since_ms = j.at("since_ms").get<int64_t>();
    if (j.contains("until_ms")) q.until_ms = j.at("until_ms").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    return Status::invalid_argument(fmt::format("log query: {}", e.what()));
  }
  return q;
}

}  // namespace llmctl::logs
