#include "runtime/logs/log_record.h"

#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace llmctl::logs {
namespace {

// Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar.
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    char c = s[i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

}  // namespace

std::optional<LogLevel> parse_log_level(std::string_view t) {
  if (t == "trace") return LogLevel::kTrace;
  if (t == "debug") return LogLevel::kDebug;
  if (t == "info") return LogLevel::kInfo;
  if (t == "warn" || t == "warning") return LogLevel::kWarn;
  if (t == "error" || t == "err") return LogLevel::kError;
  if (t == "critical") return LogLevel::kCritical;
  return std::nullopt;
}

std::string_view log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace: return "trace";
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
    case LogLevel::kCritical: return "critical";
  }
  return "info";
}

std::optional<int64_t> parse_log_time(std::string_view s) {
  // YYYY-MM-DD HH:MM:SS[.mmm]
  int y, mo, d, h, mi, sec, ms = 0;
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' ||
      s[16] != ':')
    return std::nullopt;
  if (!digits(s, 0, 4, y) || !digits(s, 5, 2, mo) || !digits(s, 8, 2, d) || !digits(s, 11, 2, h) ||
      !digits(s, 14, 2, mi) || !digits(s, 17, 2, sec))
    return std::nullopt;
  if (s.size() >= 23 && s[19] == '.' && !digits(s, 20, 3, ms)) return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  return ((days * 24 + h) * 60 + mi) * 60000 + static_cast<int64_t>(sec) * 1000 + ms;
}

std::string format_log_time(int64_t t) {
  int64_t days = t >= 0 ? t / 86400000 : (t - 86399999) / 86400000;
  int64_t rem = t - days * 86400000;
  // civil_from_days
  int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}", y, m, d, rem / 3600000, rem / 60000 % 60,
                     rem / 1000 % 60, rem % 1000);
}

bool parse_log_line(std::string_view line, LogRecord& out) {
  auto t = parse_log_time(line.substr(0, 23));
  if (!t || line.size() < 24 || line[23] != ' ') return false;
  size_t pos = 24;
  size_t end = line.find(' ', pos);
  if (end == std::string_view::npos) return false;
  auto level = parse_log_level(line.substr(pos, end - pos));
  if (!level) return false;
  pos = line.find_first_not_of(' ', end);
  if (pos == std::string_view::npos || line[pos] != '[') return false;
  end = line.find("] ", pos);
  if (end == std::string_view::npos) return false;
  out.component.assign(line.substr(pos + 1, end - pos - 1));
  pos = end + 2;
  out.node.clear();
  out.pid = 0;
  // Optional "node=X pid=N " fields, in that order.
  if (line.substr(pos, 5) == "node=") {
    end = line.find(' ', pos);
    if (end == std::string_view::npos) end = line.size();
    out.node.assign(line.substr(pos + 5, end - pos - 5));
    pos = std::min(end + 1, line.size());
  }
  if (line.substr(pos, 4) == "pid=") {
    end = line.find(' ', pos);
    if (end == std::string_view::npos) end = line.size();
    int pid = 0;
    for (size_t i = pos + 4; i < end && line[i] >= '0' && line[i] <= '9'; ++i) pid = pid * 10 + (line[i] - '0');
    out.pid = pid;
    pos = std::min(end + 1, line.size());
  }
  out.time_ms = *t;
  out.level = *level;
  out.message.assign(line.substr(pos));
  return true;
}

nlohmann::json to_json(const LogRecord& r) {
  return nlohmann::json{{"time", format_log_time(r.time_ms)},
                        {"time_ms", r.time_ms},
                        {"level", std::string(log_level_name(r.level))},
                        {"node", r.node},
                        {"component", r.component},
                        {"pid", r.pid},
                        {"file", r.file},
                        {"message", r.message},
                        {"line", r.line}};
}

Result<LogRecord> log_record_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return Status::invalid_argument("log record: not a JSON object");
  LogRecord r;
  try {
    r.time_ms = j.at("time_ms").get<int64_t>();
    auto level = parse_log_level(j.at("level").get<std::string>());
    if (!level) return Status::invalid_argument("log record: unknown level");
    r.level = *level;
    r.pid = j.value("pid", 0);
    r.node = j.at("node").get<std::string>();
    r.component = j.at("component").get<std::string>();
    r.file = j.value("file", "");
    r.message = j.value("message", "");
    r.line = j.at("line").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    return Status::invalid_argument(fmt::format("log record: {}", e.what()));
  }
  return r;
}

}  // namespace llmctl::logs
