// OutputCapture: copies a supervised child's stdout or stderr (a pipe) into
// its log file line by line, each line prefixed with the time it arrived and
// llmctl's log header:
//   2026-11-28 06:01:02.345 info  [job/pg1-0] pid=4242 NCCL INFO Bootstrap : Using eth0
// so `llmctl logs` filters NCCL's and Gloo's output by time, node and
// component like every other line (runtime/logs). A line longer than 64 KiB
// is written in pieces; a last line without a newline is written at EOF.
//
// Threading: on the agent's io_context. Keeps itself alive until the pipe
// reaches EOF (the child and everything it forked closed it).
#pragma once

#include <memory>
#include <string>

#include <asio.hpp>

#include "common/status.h"

namespace llmctl::control {

// "2026-11-28 06:01:02.345 info  [component] pid=N " in local time, the header
// of every line a supervisor writes into a child's log files.
std::string capture_line_header(const std::string& component, int pid);

class OutputCapture : public std::enable_shared_from_this<OutputCapture> {
 public:
  // Creates the pipe and opens `path` for appending. `child_fd` receives the
  // write end for the child (close it in the parent after fork).
  static Result<std::shared_ptr<OutputCapture>> create(asio::io_context& io, const std::string& path,
                                                       std::string component, int& child_fd);
  ~OutputCapture();
  OutputCapture(const OutputCapture&) = delete;
  OutputCapture& operator=(const OutputCapture&) = delete;

  void start(int pid);

  OutputCapture(asio::io_context& io, int read_fd, int file_fd, std::string component);

 private:
  void read_next();
  void write_lines(bool flush_partial);

  asio::posix::stream_descriptor pipe_;
  int file_fd_;
  std::string component_;
  int pid_ = 0;
  std::string pending_;  // bytes after the last newline
  char buffer_[16384];
};

}  // namespace llmctl::control
