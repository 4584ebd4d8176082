// What `llmctl logs` asks every node: which lines, from when, how many.
// The same struct travels to agents as JSON, so a remote search and a local
// one filter identically.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"
#include "runtime/logs/log_record.h"

namespace llmctl::logs {

struct LogQuery {
  std::string grep;  // PCRE2 syntax; empty: every line
  bool ignore_case = false;
  std::vector<std::string> nodes;       // empty: all
  std::vector<std::string> components;  // "job" matches every job/<bundle>
  std::optional<LogLevel> min_level;
  std::optional<int64_t> since_ms, until_ms;  // LogRecord::time_ms scale
  size_t tail = 0;                            // 0: from the start
  size_t max_lines = 1000;
};

// Now, in LogRecord::time_ms's scale (local wall clock read as UTC).
int64_t local_now_ms();

// "90s", "10m", "2h", "1d" before now, or "2026-11-28 06:00:00[.mmm]" /
// "2026-11-28T06:00:00" / "06:00:00" (today). `flag` names the option in errors.
Result<int64_t> parse_time_spec(std::string_view text, int64_t now_ms, std::string_view flag);

bool node_selected(const LogQuery& q, std::string_view node);
bool component_selected(const LogQuery& q, std::string_view component);
// Level, time and component filters (not the pattern, nor the node).
bool record_selected(const LogQuery& q, const LogRecord& r);

nlohmann::json to_json(const LogQuery& q);
Result<LogQuery> log_query_from_json(const nlohmann::json& j);

}  // namespace llmctl::logs
