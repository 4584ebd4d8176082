#include "runtime/logs/log_search.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <string_view>

#include <fmt/format.h>

namespace llmctl::logs {
namespace {

namespace fs = std::filesystem;

// head.log, head.1.log, head.out -> head; bundles/pg-1.err -> job/pg-1.
std::string component_of(const fs::path& p, bool bundle) {
  std::string stem = p.stem().string();  // "head.1" for head.1.log
  if (bundle) return "job/" + stem;
  if (auto dot = stem.rfind('.'); dot != std::string::npos &&
                                  stem.find_first_not_of("0123456789", dot + 1) == std::string::npos)
    stem.resize(dot);
  return stem;
}

// A read-only mapping of a whole file; empty files map to an empty view.
class MappedFile {
 public:
  MappedFile() = default;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (data_) ::munmap(data_, size_);
  }
  Status open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::io_error(fmt::format("{}: {}", path, std::strerror(errno)));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      return Status::io_error(fmt::format("{}: {}", path, std::strerror(errno)));
    }
    mtime_s_ = st.st_mtime;
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        size_ = 0;
        return Status::io_error(fmt::format("{}: mmap: {}", path, std::strerror(errno)));
      }
      ::madvise(p, size_, MADV_SEQUENTIAL);
      data_ = p;
    }
    ::close(fd);
    return Status::ok();
  }
  std::string_view view() const { return {static_cast<const char*>(data_), size_}; }
  time_t mtime() const { return mtime_s_; }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
  time_t mtime_s_ = 0;
};

size_t line_end(std::string_view buf, size_t pos) {
  const void* nl = std::memchr(buf.data() + pos, '\n', buf.size() - pos);
  return nl ? static_cast<size_t>(static_cast<const char*>(nl) - buf.data()) : buf.size();
}

size_t line_start(std::string_view buf, size_t pos) {
  while (pos > 0 && buf[pos - 1] != '\n') --pos;
  return pos;
}

std::optional<int64_t> line_time(std::string_view line) {
  if (line.size() < 23) return std::nullopt;
  return parse_log_time(line.substr(0, 23));
}

// The time of the nearest line at or before `pos` that carries one, looking
// back a bounded number of lines (a stack trace, say); else `fallback`.
int64_t time_before(std::string_view buf, size_t pos, int64_t fallback) {
  size_t start = line_start(buf, pos);
  for (int i = 0; i < 256; ++i) {
    if (auto t = line_time(buf.substr(start, line_end(buf, start) - start))) return *t;
    if (start == 0) break;
    start = line_start(buf, start - 1);
  }
  return fallback;
}

// First line start whose time is >= since, assuming lines are in time order
// (they are: one writer appends each file). Lines without a time belong to
// the line before them.
size_t seek_time(std::string_view buf, int64_t since) {
  size_t lo = 0, hi = buf.size();
  while (hi - lo > 4096) {
    size_t mid = lo + (hi - lo) / 2;
    size_t s = line_end(buf, mid);
    if (s >= buf.size()) { hi = mid; continue; }
    ++s;
    // Find the next line with a time, a few lines at most.
    std::optional<int64_t> t;
    size_t probe = s;
    for (int i = 0; i < 64 && probe < buf.size() && !t; ++i) {
      size_t e = line_end(buf, probe);
      t = line_time(buf.substr(probe, e - probe));
      if (!t) probe = e + 1;
    }
    if (!t || *t >= since) hi = mid;
    else lo = s;
  }
  return line_start(buf, lo);
}

struct FileScan {
  const LogSource& source;
  const std::string& node;
  const LogQuery& query;
  const LogPattern& pattern;
  int64_t fallback_time_ms;
};

// False for a line the source says to skip (raw_only and in llmctl's format).
bool make_record(const FileScan& scan, std::string_view line, int64_t inherited_time, LogRecord& r) {
  bool parsed = parse_log_line(line, r);
  if (parsed && scan.source.raw_only) return false;
  if (!parsed) {
    r.time_ms = inherited_time;
    r.level = LogLevel::kInfo;
    r.component = scan.source.component;
    r.message.assign(line);
  } else if (scan.source.component.rfind("job/", 0) == 0) {
    r.component = scan.source.component;  // captured output keeps its bundle's name
  }
  if (!scan.node.empty()) r.node = scan.node;
  r.file = scan.source.relative;
  r.line.assign(line);
  return true;
}

// Appends this file's matching records (file order) to `out`, stopping after
// `limit` unless tail mode keeps only the last ones. Returns bytes scanned.
uint64_t scan_file(const FileScan& scan, std::string_view buf, size_t limit, std::deque<LogRecord>& out,
                   bool& truncated) {
  const LogQuery& q = scan.query;
  size_t pos = q.since_ms ? seek_time(buf, *q.since_ms) : 0;
  const size_t begin = pos;
  const bool tail = q.tail > 0;
  auto keep = [&](LogRecord&& r) -> bool {  // false: stop scanning
    if (q.until_ms && r.time_ms > *q.until_ms) return false;
    if (!record_selected(q, r)) return true;
    out.push_back(std::move(r));
    if (tail) {
      if (out.size() > q.tail) out.pop_front();
    } else if (out.size() > limit) {
      out.pop_back();
      truncated = true;
      return false;
    }
    return true;
  };
  if (!scan.pattern.empty()) {
    while (pos < buf.size()) {
      size_t m = scan.pattern.find(buf, pos);
      if (m == std::string_view::npos) {
        pos = buf.size();
        break;
      }
      size_t s = line_start(buf, m);
      if (s < pos) s = pos;
      size_t e = line_end(buf, m);
      std::string_view line = buf.substr(s, e - s);
      if (scan.pattern.matches(line)) {
        int64_t t = line_time(line).value_or(0);
        if (t == 0) t = s > 0 ? time_before(buf, s - 1, scan.fallback_time_ms) : scan.fallback_time_ms;
        LogRecord r;
        if (make_record(scan, line, t, r) && !keep(std::move(r))) { pos = e; break; }
      }
      pos = e + 1;
    }
  } else {
    int64_t last = pos > 0 ? time_before(buf, pos - 1, scan.fallback_time_ms) : scan.fallback_time_ms;
    while (pos < buf.size()) {
      size_t e = line_end(buf, pos);
      std::string_view line = buf.substr(pos, e - pos);
      if (auto t = line_time(line)) last = *t;
      LogRecord r;
      if (!line.empty() && make_record(scan, line, last, r) && !keep(std::move(r))) { pos = e; break; }
      pos = e + 1;
    }
  }
  return std::min(pos, buf.size()) - begin;
}

}  // namespace

std::vector<LogSource> list_log_sources(const std::string& state_dir) {
  std::vector<LogSource> sources;
  auto add_dir = [&](const std::string& sub, bool bundle) {
    fs::path dir = fs::path(state_dir) / sub;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (!entry.is_regular_file(ec)) continue;
      std::string ext = entry.path().extension().string();
      if (ext != ".log" && ext != ".out" && ext != ".err") continue;
      // A daemon's .out file holds its stderr: the same lines as its .log
      // file plus what never reached the logger (a crash message). Only
      // the latter are taken from it, so nothing shows twice.
      bool raw_only = !bundle && ext == ".out" && fs::exists(dir / (entry.path().stem().string() + ".log"), ec);
      sources.push_back({entry.path().string(), sub + "/" + entry.path().filename().string(),
                         component_of(entry.path(), bundle), raw_only});
    }
  };
  add_dir("logs", false);
  add_dir("agent/bundles", true);  // where an agent's supervised children write (control::NodePaths)
  add_dir("bundles", true);
  std::sort(sources.begin(), sources.end(), [](const LogSource& a, const LogSource& b) { return a.path < b.path; });
  return sources;
}

Result<LogSearchResult> search_logs(const std::string& state_dir, const std::string& node, const LogQuery& query) {
  ASSIGN_OR_RETURN(LogPattern pattern, LogPattern::compile(query.grep, query.ignore_case));
  LogSearchResult result;
  std::vector<LogSearchResult> per_file;
  for (const LogSource& source : list_log_sources(state_dir)) {
    if (!query.components.empty() && !component_selected(query, source.component) &&
        source.component.rfind("job/", 0) == 0)
      continue;  // captured output carries its file's component: skip the whole file
    MappedFile file;
    if (Status s = file.open(source.path); !s) {
      result.warnings.push_back(s.message());
      continue;
    }
    time_t mt = file.mtime();
    struct tm local {};
    localtime_r(&mt, &local);
    int64_t fallback = (static_cast<int64_t>(mt) + local.tm_gmtoff) * 1000;
    std::deque<LogRecord> found;
    LogSearchResult part;
    FileScan scan{source, node, query, pattern, fallback};
    part.bytes_scanned = scan_file(scan, file.view(), query.max_lines, found, part.truncated);
    part.records.assign(std::make_move_iterator(found.begin()), std::make_move_iterator(found.end()));
    per_file.push_back(std::move(part));
  }
  LogSearchResult merged = merge_by_time(std::move(per_file), query);
  merged.warnings.insert(merged.warnings.begin(), result.warnings.begin(), result.warnings.end());
  return merged;
}

LogSearchResult merge_by_time(std::vector<LogSearchResult> parts, const LogQuery& query) {
  LogSearchResult out;
  size_t total = 0;
  for (auto& p : parts) {
    out.bytes_scanned += p.bytes_scanned;
    out.truncated = out.truncated || p.truncated;
    total += p.records.size();
    for (auto& w : p.warnings) out.warnings.push_back(std::move(w));
  }
  out.records.reserve(total);
  for (auto& p : parts)
    for (auto& r : p.records) out.records.push_back(std::move(r));
  // Stable: lines of one file with the same millisecond keep their order.
  std::stable_sort(out.records.begin(), out.records.end(),
                   [](const LogRecord& a, const LogRecord& b) { return a.time_ms < b.time_ms; });
  if (query.tail > 0 && out.records.size() > query.tail)
    out.records.erase(out.records.begin(), out.records.end() - static_cast<std::ptrdiff_t>(query.tail));
  size_t cap = query.tail > 0 ? std::max(query.tail, query.max_lines) : query.max_lines;
  if (out.records.size() > cap) {
    out.records.resize(cap);
    out.truncated = true;
  }
  return out;
}

Result<LogFollower> LogFollower::create(std::string state_dir, std::string node, LogQuery query) {
  LogFollower f;
  ASSIGN_OR_RETURN(f.pattern_, LogPattern::compile(query.grep, query.ignore_case));
  f.state_dir_ = std::move(state_dir);
  f.node_ = std::move(node);
  f.query_ = std::move(query);
  for (const LogSource& source : list_log_sources(f.state_dir_)) {
    struct stat st {};
    if (::stat(source.path.c_str(), &st) != 0) continue;
    f.positions_[source.path] = {st.st_dev, st.st_ino, static_cast<uint64_t>(st.st_size), 0};
  }
  return f;
}

std::vector<LogRecord> LogFollower::poll() {
  std::vector<LogRecord> out;
  for (const LogSource& source : list_log_sources(state_dir_)) {
    struct stat st {};
    if (::stat(source.path.c_str(), &st) != 0) continue;
    auto known = positions_.find(source.path);
    if (known == positions_.end() || known->second.ino != st.st_ino) {
      // A rotated file keeps its inode under a new name: carry its offset
      // over so its old lines are not shown again. A really new file starts at 0.
      Position moved{st.st_dev, st.st_ino, 0, 0};
      for (const auto& [path, p] : positions_)
        if (p.dev == st.st_dev && p.ino == st.st_ino) moved = p;
      positions_[source.path] = moved;
    }
    Position& pos = positions_[source.path];
    if (pos.ino != st.st_ino || pos.dev != st.st_dev || static_cast<uint64_t>(st.st_size) < pos.offset) {
      pos = {st.st_dev, st.st_ino, 0, pos.last_time_ms};
    }
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size <= pos.offset) continue;
    int fd = ::open(source.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    std::string chunk(size - pos.offset, '\0');
    ssize_t n = ::pread(fd, chunk.data(), chunk.size(), static_cast<off_t>(pos.offset));
    ::close(fd);
    if (n <= 0) continue;
    chunk.resize(static_cast<size_t>(n));
    size_t complete = chunk.rfind('\n');
    if (complete == std::string::npos) continue;  // wait for the rest of the line
    std::string_view buf(chunk.data(), complete + 1);
    FileScan scan{source, node_, query_, pattern_, pos.last_time_ms ? pos.last_time_ms : local_now_ms()};
    size_t p = 0;
    while (p < buf.size()) {
      size_t e = line_end(buf, p);
      std::string_view line = buf.substr(p, e - p);
      if (auto t = line_time(line)) pos.last_time_ms = *t;
      if (!line.empty() && pattern_.matches(line)) {
        LogRecord r;
        if (make_record(scan, line, pos.last_time_ms ? pos.last_time_ms : scan.fallback_time_ms, r) &&
            record_selected(query_, r))
          out.push_back(std::move(r));
      }
      p = e + 1;
    }
    pos.offset += complete + 1;
  }
  std::stable_sort(out.begin(), out.end(), [](const LogRecord& a, const LogRecord& b) { return a.time_ms < b.time_ms; });
  return out;
}

}  // namespace llmctl::logs
