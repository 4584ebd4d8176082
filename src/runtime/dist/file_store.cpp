// The directory-backed RendezvousStore: the ranks of one node find each other
// without a cluster. Keys become file names (bytes outside [A-Za-z0-9._-]
// escaped as %XX, so "tp/rank/0" is one flat file); a value is written to a
// private temporary file and renamed into place, so a reader sees either no
// file or the whole value.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "runtime/dist/rendezvous_store.h"

namespace llmctl::dist {
namespace {

std::string escape_key(const std::string& key) {
  std::string out;
  for (unsigned char c : key) {
    if (std::isalnum(c) || c == '.' || c == '_' || c == '-') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  // "." and ".." are directory entries, not keys.
  if (out == "." || out == "..") out = "%2E" + out.substr(1);
  return out;
}

class FileStore final : public RendezvousStore {
 public:
  explicit FileStore(std::string dir) : dir_(std::move(dir)) {}

  Status set(const std::string& key, const std::string& value) override {
    if (key.empty()) return Status::invalid_argument(fmt::format("{}: empty key", describe()));
    std::string path = dir_ + "/" + escape_key(key);
    // Unique per process and call, so concurrent writers never share a temp file.
    static std::atomic<unsigned> counter{0};
    std::string tmp = fmt::format("{}/.tmp.{}.{}", dir_, ::getpid(), counter.fetch_add(1));
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      return Status::io_error(fmt::format("{}: setting \"{}\": creating {}: {}", describe(), key, tmp, std::strerror(errno)));
    }
    std::size_t done = 0;
    while (done < value.size()) {
      ssize_t n = ::write(fd, value.data() + done, value.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        int err = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        return Status::io_error(fmt::format("{}: setting \"{}\": writing {}: {}", describe(), key, tmp, std::strerror(err)));
      }
      done += static_cast<std::size_t>(n);
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return Status::io_error(fmt::format("{}: setting \"{}\": renaming to {}: {}", describe(), key, path, std::strerror(err)));
    }
    return Status::ok();
  }

  Result<std::string> get(const std::string& key, std::chrono::milliseconds timeout) override {
    std::string path = dir_ + "/" + escape_key(key);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    // Backoff from 1 ms to 50 ms: a rank that joins late is seen quickly,
    // and N ranks polling for the whole timeout cost little CPU.
    auto pause = std::chrono::milliseconds(1);
    while (true) {
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        std::string value;
        char buf[16384];
        while (true) {
          ssize_t n = ::read(fd, buf, sizeof(buf));
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) {
            int err = errno;
            ::close(fd);
            return Status::io_error(fmt::format("{}: reading \"{}\" ({}): {}", describe(), key, path, std::strerror(err)));
          }
          if (n == 0) break;
          value.append(buf, static_cast<std::size_t>(n));
        }
        ::close(fd);
        return value;
      }
      if (errno != ENOENT) {
        return Status::io_error(fmt::format("{}: reading \"{}\" ({}): {}", describe(), key, path, std::strerror(errno)));
      }
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) {
        return Status::deadline_exceeded(
            fmt::format("{}: key \"{}\" was not set within {} ms", describe(), key, timeout.count()));
      }
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(pause, deadline - now));
      pause = std::min(pause * 2, std::chrono::milliseconds(50));
    }
  }

  std::string describe() const override { return "file store " + dir_; }

 private:
  std::string dir_;
};

}  // namespace

Result<std::unique_ptr<RendezvousStore>> open_file_store(const std::string& dir) {
  if (dir.empty()) return Status::invalid_argument("file store: empty directory");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::io_error(fmt::format("file store {}: creating the directory: {}", dir, ec.message()));
  if (!std::filesystem::is_directory(dir, ec)) {
    return Status::invalid_argument(fmt::format("file store {}: not a directory", dir));
  }
  return std::unique_ptr<RendezvousStore>(std::make_unique<FileStore>(dir));
}

}  // namespace llmctl::dist
