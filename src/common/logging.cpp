#include "common/logging.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <vector>

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace llmctl {
namespace {

struct LogState {
  std::mutex mu;
  std::vector<spdlog::sink_ptr> sinks;  // guarded by mu
  std::string pattern;                  // guarded by mu
  spdlog::level::level_enum level = spdlog::level::info;  // guarded by mu
  bool initialised = false;             // guarded by mu
};

LogState& state() {
  static LogState s;
  return s;
}

std::string hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

void default_init_locked(LogState& s) {
  if (s.initialised) return;
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  s.sinks = {sink};
  s.pattern = "%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [%n] node=" + hostname() + " pid=%P %v";
  s.level = spdlog::level::warn;
  s.initialised = true;
}

}  // namespace

void init_logging(const LogOptions& options) {
  LogState& s = state();
  std::lock_guard lock(s.mu);
  std::vector<spdlog::sink_ptr> sinks;
  auto stderr_level = spdlog::level::from_str(options.level);
  auto file_level = std::min(stderr_level, spdlog::level::from_str(options.file_level));
  auto lowest = spdlog::level::off;
  if (options.to_stderr) {
    sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    sinks.back()->set_level(stderr_level);
    lowest = stderr_level;
  }
  if (!options.file_path.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(options.file_path).parent_path(), ec);
    try {
      sinks.push_back(std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
          options.file_path, options.max_file_size_bytes, options.max_files));
      sinks.back()->set_level(file_level);
      lowest = std::min(lowest, file_level);
    } catch (const spdlog::spdlog_ex& e) {
      // A log file we cannot open must not stop the command; say so on stderr.
      fprintf(stderr, "llmctl: cannot open log file %s: %s\n", options.file_path.c_str(), e.what());
    }
  }
  std::string node = options.node_name.empty() ? hostname() : options.node_name;
  s.sinks = std::move(sinks);
  s.pattern = "%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [%n] node=" + node + " pid=%P %v";
  s.level = lowest;  // each sink filters to its own level
  s.initialised = true;
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& l) {
    l->sinks() = s.sinks;
    l->set_pattern(s.pattern);
    l->set_level(s.level);
  });
}

std::shared_ptr<spdlog::logger> logger(std::string_view component) {
  LogState& s = state();
  std::lock_guard lock(s.mu);
  default_init_locked(s);
  std::string name(component);
  if (auto existing = spdlog::get(name)) return existing;
  auto l = std::make_shared<spdlog::logger>(name, s.sinks.begin(), s.sinks.end());
  l->set_pattern(s.pattern);
  l->set_level(s.level);
  l->flush_on(spdlog::level::info);
  spdlog::register_logger(l);
  return l;
}

}  // namespace llmctl
