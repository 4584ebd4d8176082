// Logging setup: one named spdlog logger per component ("head", "agent",
// "doctor", "engine", ...), writing to stderr and to a rotating file in the
// state dir. Lines carry time with milliseconds, level, component and node:
//   2026-11-28 06:01:02.345 info  [agent] node=lf002 pid=4242 joined head 10.0.0.1:6379
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace llmctl {

struct LogOptions {
  std::string node_name;          // shown as node=...; defaults to the hostname
  std::string file_path;          // empty: no file sink
  std::string level = "info";     // on stderr: trace, debug, info, warn, error, off
  // The file keeps at least info even when stderr is quieter: `llmctl logs`
  // searches these files after the fact.
  std::string file_level = "info";
  bool to_stderr = true;
  std::size_t max_file_size_bytes = 32u << 20;
  std::size_t max_files = 5;
};

// Configures every logger created afterwards (and those created before).
// Thread-safe; may be called again, e.g. once the state dir is known.
void init_logging(const LogOptions& options);

// The logger for a component; created on first use with the current sinks.
std::shared_ptr<spdlog::logger> logger(std::string_view component);

}  // namespace llmctl
