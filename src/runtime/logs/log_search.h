// Searching one node's log files: what `llmctl logs` runs locally and what
// each agent runs when the head fans a query out.
//
// A node's logs live in its state dir: logs/<component>.log (rotated as
// <component>.N.log), logs/<daemon>.out (a daemon's own stdout/stderr), and
// agent/bundles/<group>-<index>.out|.err (children the agent supervises,
// component job/<group>-<index>; also read from bundles/).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "runtime/logs/log_pattern.h"
#include "runtime/logs/log_query.h"
#include "runtime/logs/log_record.h"

namespace llmctl::logs {

struct LogSource {
  std::string path;       // as opened
  std::string relative;   // relative to the state dir, shown to users
  std::string component;  // from the file name
  bool raw_only = false;  // a daemon's stdout/stderr beside its .log: only lines the logger did not write
};

// Every log file under the state dir, in a stable order. A missing dir gives none.
std::vector<LogSource> list_log_sources(const std::string& state_dir);

struct LogSearchResult {
  std::vector<LogRecord> records;  // oldest first
  bool truncated = false;          // more lines matched than max_lines allowed
  uint64_t bytes_scanned = 0;
  std::vector<std::string> warnings;  // files that could not be read, by name
};

// Searches one node's files. `node` names the node in every record (empty:
// the node= field of each line). Honours every filter of the query except
// `nodes`, which the caller applies.
Result<LogSearchResult> search_logs(const std::string& state_dir, const std::string& node, const LogQuery& query);

// Merges results of several nodes (each oldest first) by time, then applies
// the query's tail and max_lines to the whole.
LogSearchResult merge_by_time(std::vector<LogSearchResult> parts, const LogQuery& query);

// --follow: remembers where each file ended and returns lines appended since.
// Handles rotation (a new inode or a shorter file starts from the top).
class LogFollower {
 public:
  static Result<LogFollower> create(std::string state_dir, std::string node, LogQuery query);
  // Matching lines written since the last call (or since create()), oldest first.
  std::vector<LogRecord> poll();

 private:
  struct Position {
    dev_t dev = 0;
    ino_t ino = 0;
    uint64_t offset = 0;
    int64_t last_time_ms = 0;
  };
  LogFollower() = default;
  std::string state_dir_, node_;
  LogQuery query_;
  LogPattern pattern_;
  std::map<std::string, Position> positions_;
};

}  // namespace llmctl::logs
