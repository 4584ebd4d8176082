#include "runtime/control/output_capture.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

namespace llmctl::control {
namespace {

constexpr std::size_t kMaxLineBytes = 64 * 1024;

void write_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // a full disk loses log lines, never the child
    off += static_cast<std::size_t>(n);
  }
}

}  // namespace

std::string capture_line_header(const std::string& component, int pid) {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ms / 1000);
  struct tm local {};
  localtime_r(&secs, &local);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &local);
  return fmt::format("{}.{:03} info  [{}] pid={} ", stamp, ms % 1000, component, pid);
}

OutputCapture::OutputCapture(asio::io_context& io, int read_fd, int file_fd, std::string component)
    : pipe_(io, read_fd), file_fd_(file_fd), component_(std::move(component)) {}

OutputCapture::~OutputCapture() {
  if (file_fd_ >= 0) ::close(file_fd_);
}

Result<std::shared_ptr<OutputCapture>> OutputCapture::create(asio::io_context& io, const std::string& path,
                                                             std::string component, int& child_fd) {
  int file_fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (file_fd < 0) return Status::io_error(fmt::format("opening {}: {}", path, std::strerror(errno)));
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    ::close(file_fd);
    return Status::io_error(fmt::format("pipe for {}: {}", path, std::strerror(errno)));
  }
  child_fd = fds[1];
  return std::make_shared<OutputCapture>(io, fds[0], file_fd, std::move(component));
}

void OutputCapture::start(int pid) {
  pid_ = pid;
  read_next();
}

void OutputCapture::read_next() {
  pipe_.async_read_some(asio::buffer(buffer_), [self = shared_from_this()](asio::error_code ec, std::size_t n) {
    if (n > 0) {
      self->pending_.append(self->buffer_, n);
      self->write_lines(false);
    }
    if (ec) {  // EOF or error: write what is left and stop
      self->write_lines(true);
      return;
    }
    self->read_next();
  });
}

void OutputCapture::write_lines(bool flush_partial) {
  std::string out;
  std::size_t start = 0;
  const std::string header = capture_line_header(component_, pid_);
  for (;;) {
    std::size_t nl = pending_.find('\n', start);
    if (nl == std::string::npos) {
      if (pending_.size() - start >= kMaxLineBytes || (flush_partial && pending_.size() > start)) {
        out += header;
        out.append(pending_, start, std::string::npos);
        out += '\n';
        start = pending_.size();
      }
      break;
    }
    std::size_t end = nl;
    if (end > start && pending_[end - 1] == '\r') --end;  // progress bars and CRLF programs
    out += header;
    out.append(pending_, start, end - start);
    out += '\n';
    start = nl + 1;
  }
  pending_.erase(0, start);
  if (!out.empty()) write_all(file_fd_, out);
}

}  // namespace llmctl::control
