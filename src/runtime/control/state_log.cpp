#include "runtime/control/state_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace llmctl::control {
namespace {

Status errno_status(const std::string& what) { return Status::io_error(fmt::format("{}: {}", what, std::strerror(errno))); }

Status write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status("writing " + path);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return Status::ok();
}

Status fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return errno_status("opening " + dir);
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status::ok() : errno_status("fsync " + dir);
}

}  // namespace

std::string record_checksum(std::string_view data) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("{:016x}", h);
}

Result<std::unique_ptr<StateLog>> StateLog::open(const std::string& dir, ClusterState* state, RecoveryStats* stats) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::io_error(fmt::format("creating {}: {}", dir, ec.message()));
  RecoveryStats local;
  if (!stats) stats = &local;
  *state = ClusterState{};

  const std::string snapshot_path = dir + "/snapshot.json";
  if (std::filesystem::exists(snapshot_path)) {
    std::ifstream in(snapshot_path);
    std::stringstream ss;
    ss << in.rdbuf();
    auto j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return Status::io_error(fmt::format("{} is not valid JSON", snapshot_path));
    auto s = ClusterState::from_json(j);
    if (!s.is_ok()) return s.status().with_context(snapshot_path);
    *state = std::move(s).value();
    stats->had_snapshot = true;
  }

  const std::string log_path = dir + "/state.log";
  std::string content;
  {
    std::ifstream in(log_path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    content = ss.str();
  }
  std::size_t good_end = 0, pos = 0, num_records = 0;
  while (pos < content.size()) {
    std::size_t nl = content.find('\n', pos);
    if (nl == std::string::npos) break;  // torn: no newline
    std::string_view line(content.data() + pos, nl - pos);
    if (line.size() < 18 || line[16] != ' ') break;
    std::string_view body = line.substr(17);
    if (record_checksum(body) != line.substr(0, 16)) break;
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded()) break;
    if (Status s = state->apply(j); !s.is_ok()) return s.with_context(fmt::format("{} at byte {}", log_path, pos));
    ++num_records;
    pos = nl + 1;
    good_end = pos;
  }
  stats->num_records_replayed = num_records;
  stats->num_bytes_discarded = content.size() - good_end;

  int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return errno_status("opening " + log_path);
  if (::ftruncate(fd, static_cast<off_t>(good_end)) != 0 || ::lseek(fd, 0, SEEK_END) < 0) {
    Status s = errno_status("truncating " + log_path);
    ::close(fd);
    return s;
  }
  auto log = std::unique_ptr<StateLog>(new StateLog(dir, fd));
  log->num_records_ = num_records;
  return log;
}

StateLog::~StateLog() {
  if (fd_ >= 0) ::close(fd_);
}

Status StateLog::append(const nlohmann::json& record) {
  std::string body = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string line = record_checksum(body) + " " + body + "\n";
  RETURN_IF_ERROR(write_all(fd_, line, dir_ + "/state.log"));
  if (::fdatasync(fd_) != 0) return errno_status("fdatasync " + dir_ + "/state.log");
  ++num_records_;
  return Status::ok();
}

Status StateLog::snapshot(const ClusterState& state) {
  const std::string tmp = dir_ + "/snapshot.json.tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errno_status("opening " + tmp);
  Status s = write_all(fd, state.to_json().dump(), tmp);
  if (s.is_ok() && ::fsync(fd) != 0) s = errno_status("fsync " + tmp);
  ::close(fd);
  RETURN_IF_ERROR(s);
  if (::rename(tmp.c_str(), (dir_ + "/snapshot.json").c_str()) != 0) return errno_status("renaming " + tmp);
  RETURN_IF_ERROR(fsync_dir(dir_));
  // Only now is the log redundant; a crash before this line replays records
  // the snapshot already holds, which apply() tolerates (they are upserts).
  if (::ftruncate(fd_, 0) != 0 || ::lseek(fd_, 0, SEEK_SET) < 0) return errno_status("truncating state.log");
  if (::fsync(fd_) != 0) return errno_status("fsync state.log");
  num_records_ = 0;
  return Status::ok();
}

}  // namespace llmctl::control
