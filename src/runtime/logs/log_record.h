// One line of a node's logs as `llmctl logs` reports it: where it came from
// (node, component, file) and what it says (time, level, pid, message).
//
// llmctl's own components write lines in one format (common/logging.h):
//   2026-11-28 06:01:02.345 info  [agent] node=lf002 pid=4242 joined head 10.0.0.1:6379
// Children's stdout/stderr (where NCCL and Gloo print) are captured by the
// agent with a time stamp in front; lines without one (a stack trace's
// continuation, a program that wrote before capture started) inherit the
// time of the line before them, so time filters keep them with their context.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace llmctl::logs {

enum class LogLevel { kTrace = 0, kDebug, kInfo, kWarn, kError, kCritical };

// "trace", "debug", "info", "warn"/"warning", "error"/"err", "critical".
std::optional<LogLevel> parse_log_level(std::string_view text);
std::string_view log_level_name(LogLevel level);

struct LogRecord {
  // Wall-clock time written in the line, as milliseconds since 1970 reading
  // the local time fields as if they were UTC (what the node's clock showed).
  int64_t time_ms = 0;
  LogLevel level = LogLevel::kInfo;
  int pid = 0;
  std::string node;
  std::string component;  // head, agent, serve, ..., or job/<bundle> for captured output
  std::string file;       // path relative to the node's state dir
  std::string message;    // the text after the header
  std::string line;       // the whole line as written
};

// The header of one line in llmctl's format; false if the line has none.
// Fills time_ms, level, component, node, pid and message.
bool parse_log_line(std::string_view line, LogRecord& out);

// "2026-11-28 06:01:02.345" (or with 'T') to milliseconds as in LogRecord::time_ms.
std::optional<int64_t> parse_log_time(std::string_view text);
// The inverse: "2026-11-28 06:01:02.345".
std::string format_log_time(int64_t time_ms);

nlohmann::json to_json(const LogRecord& record);
Result<LogRecord> log_record_from_json(const nlohmann::json& j);

}  // namespace llmctl::logs
