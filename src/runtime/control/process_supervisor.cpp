#include "runtime/control/process_supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "common/logging.h"
#include "runtime/control/gpu_indices.h"
#include "runtime/control/output_capture.h"

namespace llmctl::control {
namespace {

void append_line(const std::string& path, const std::string& line) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  std::string l = line + "\n";
  ssize_t ignored = ::write(fd, l.data(), l.size());
  (void)ignored;
  ::close(fd);
}

}  // namespace

nlohmann::json BundleProcess::to_json() const {
  return {{"group_id", spec.group_id}, {"index", spec.index}, {"pid", pid},
          {"state", state},            {"exit_code", exit_code}, {"num_restarts", num_restarts}};
}

ProcessSupervisor::ProcessSupervisor(asio::io_context& io, std::string log_dir, UpdateHandler on_update)
    : io_(io), log_dir_(std::move(log_dir)), on_update_(std::move(on_update)), poll_timer_(io) {
  poll();
}

ProcessSupervisor::~ProcessSupervisor() { poll_timer_.cancel(); }

Status ProcessSupervisor::launch(const BundleSpec& spec) {
  Key key{spec.group_id, spec.index};
  if (auto it = processes_.find(key); it != processes_.end() && it->second.pid > 0) return Status::ok();
  if (spec.command.empty()) return Status::invalid_argument(fmt::format("bundle {}[{}] has no command", spec.group_id, spec.index));
  BundleProcess& p = processes_[key];
  p.spec = spec;
  Status s = Status::ok();
  if (spec.gpu_indices) {
    const char* inherited = std::getenv("CUDA_VISIBLE_DEVICES");
    auto visible = cuda_visible_devices(*spec.gpu_indices,
                                        inherited ? std::optional<std::string>(inherited) : std::nullopt);
    if (visible.is_ok()) {
      p.spec.env["CUDA_VISIBLE_DEVICES"] = *visible;
    } else {
      s = visible.status().with_context(fmt::format("bundle {}[{}]", spec.group_id, spec.index));
      std::error_code ec;
      std::filesystem::create_directories(log_dir_, ec);
      append_line(fmt::format("{}/{}-{}.err", log_dir_, spec.group_id, spec.index),
                  capture_line_header(fmt::format("job/{}-{}", spec.group_id, spec.index), 0) +
                      "llmctl agent: cannot start: " + s.message());
    }
  }
  if (s.is_ok()) s = spawn(p);
  if (!s.is_ok()) {
    p.state = "failed";
    p.exit_code = 127;
  }
  on_update_(p);
  return s;
}

Status ProcessSupervisor::spawn(BundleProcess& p) {
  std::error_code ec;
  std::filesystem::create_directories(log_dir_, ec);
  std::string base = fmt::format("{}/{}-{}", log_dir_, p.spec.group_id, p.spec.index);
  std::string out_path = base + ".out", err_path = base + ".err";
  std::string cmdline = fmt::format("{}", fmt::join(p.spec.command, " "));
  std::string component = fmt::format("job/{}-{}", p.spec.group_id, p.spec.index);
  append_line(err_path, capture_line_header(component, 0) +
                            fmt::format("llmctl agent: starting (attempt {}): {}", p.num_restarts + 1, cmdline));

  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe calls.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string_view entry(*e);
    if (!p.spec.env.count(std::string(entry.substr(0, entry.find('='))))) env_strings.emplace_back(entry);
  }
  for (const auto& [k, v] : p.spec.env) env_strings.push_back(fmt::format("{}={}", k, v));
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  for (auto& a : p.spec.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // The child writes into pipes; the agent stamps each line with its time
  // and header on the way into the files (output_capture.h).
  int out_fd = -1, err_fd = -1;
  auto out_capture = OutputCapture::create(io_, out_path, component, out_fd);
  if (!out_capture.is_ok()) return out_capture.status();
  auto err_capture = OutputCapture::create(io_, err_path, component, err_fd);
  if (!err_capture.is_ok()) {
    ::close(out_fd);
    return err_capture.status();
  }
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(out_fd);
    ::close(err_fd);
    return Status::io_error(fmt::format("fork: {}", std::strerror(errno)));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(129);  // the agent died before prctl
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    ::execvpe(argv[0], argv.data(), envp.data());
    const char msg[] = "llmctl agent: exec failed\n";
    ssize_t ignored = ::write(2, msg, sizeof msg - 1);
    (void)ignored;
    ::_exit(127);
  }
  ::close(out_fd);
  ::close(err_fd);
  (*out_capture)->start(pid);
  (*err_capture)->start(pid);
  p.pid = pid;
  p.state = "running";
  logger("agent")->info("bundle {}[{}] started: pid {} ({})", p.spec.group_id, p.spec.index, pid, cmdline);
  return Status::ok();
}

void ProcessSupervisor::poll() {
  for (auto& [key, p] : processes_) {
    if (p.pid <= 0) continue;
    int status = 0;
    pid_t r = ::waitpid(p.pid, &status, WNOHANG);
    if (r != p.pid) continue;
    p.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    p.pid = 0;
    std::string err_path = fmt::format("{}/{}-{}.err", log_dir_, p.spec.group_id, p.spec.index);
    append_line(err_path, capture_line_header(fmt::format("job/{}-{}", p.spec.group_id, p.spec.index), r) +
                              fmt::format("llmctl agent: exited with code {}", p.exit_code));
    if (p.state == "stopped") {
      on_update_(p);
      continue;
    }
    bool restart = (p.spec.restart == "always" || (p.spec.restart == "on_failure" && p.exit_code != 0)) &&
                   p.num_restarts < p.spec.max_restarts;
    logger("agent")->log(p.exit_code == 0 ? spdlog::level::info : spdlog::level::warn,
                         "bundle {}[{}] exited with code {}{}", p.spec.group_id, p.spec.index, p.exit_code,
                         restart ? ", restarting" : "");
    if (restart) {
      ++p.num_restarts;
      p.state = "restarting";
      on_update_(p);
      if (!spawn(p).is_ok()) p.state = "failed";
      on_update_(p);
    } else {
      p.state = p.exit_code == 0 ? "exited" : "failed";
      on_update_(p);
    }
  }
  poll_timer_.expires_after(std::chrono::milliseconds(100));
  poll_timer_.async_wait([this](asio::error_code ec) {
    if (!ec) poll();
  });
}

void ProcessSupervisor::stop(const Key& key, int grace_ms) {
  auto it = processes_.find(key);
  if (it == processes_.end()) return;
  BundleProcess& p = it->second;
  p.state = "stopped";
  if (p.pid <= 0) return;
  ::kill(-p.pid, SIGTERM);
  pid_t pid = p.pid;
  auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(grace_ms));
  timer->async_wait([this, key, pid, timer](asio::error_code) {
    auto i = processes_.find(key);
    if (i != processes_.end() && i->second.pid == pid) ::kill(-pid, SIGKILL);
  });
}

void ProcessSupervisor::stop_all(int grace_ms) {
  for (auto& [key, p] : processes_) {
    p.state = "stopped";
    if (p.pid > 0) ::kill(-p.pid, SIGTERM);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  for (;;) {
    bool any = false;
    for (auto& [key, p] : processes_) {
      if (p.pid <= 0) continue;
      int status = 0;
      if (::waitpid(p.pid, &status, WNOHANG) == p.pid) {
        p.pid = 0;
      } else {
        any = true;
      }
    }
    if (!any) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      for (auto& [key, p] : processes_) {
        if (p.pid > 0) {
          ::kill(-p.pid, SIGKILL);
          ::waitpid(p.pid, nullptr, 0);
          p.pid = 0;
        }
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::vector<BundleProcess> ProcessSupervisor::list() const {
  std::vector<BundleProcess> out;
  for (const auto& [key, p] : processes_) out.push_back(p);
  return out;
}

}  // namespace llmctl::control
