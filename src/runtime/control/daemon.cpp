#include "runtime/control/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runtime/transport/handshake.h"

extern char** environ;

namespace llmctl::control {

NodePaths::NodePaths(std::string state_dir)
    : root(std::move(state_dir)),
      cluster_file(root + "/cluster.json"),
      head_pid(root + "/head.pid"),
      agent_pid(root + "/agent.pid"),
      head_dir(root + "/head"),
      agent_dir(root + "/agent"),
      logs_dir(root + "/logs") {}

std::string new_cluster_token() { return transport::random_hex(32); }

Status write_private_file(const std::string& path, const std::string& content) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (ec) return Status::io_error(fmt::format("creating the folder of {}: {}", path, ec.message()));
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::io_error(fmt::format("opening {}: {}", tmp, std::strerror(errno)));
  ::fchmod(fd, 0600);
  ssize_t n = ::write(fd, content.data(), content.size());
  ::fsync(fd);
  ::close(fd);
  if (n != static_cast<ssize_t>(content.size())) return Status::io_error(fmt::format("writing {}", tmp));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::io_error(fmt::format("renaming {}: {}", tmp, std::strerror(errno)));
  }
  return Status::ok();
}

Status write_cluster_access(const NodePaths& paths, const ClusterAccess& access) {
  nlohmann::json j = {{"address", access.address}, {"token", access.token}};
  if (!access.tls_ca.empty()) j["tls_ca"] = access.tls_ca;
  return write_private_file(paths.cluster_file, j.dump(2) + "\n");
}

Result<ClusterAccess> read_cluster_access(const NodePaths& paths) {
  auto a = read_cluster_access_file(paths.cluster_file);
  if (!a.is_ok() && a.status().code() == StatusCode::kNotFound) {
    return Status::not_found(fmt::format("this node is in no cluster ({} is missing); pass --address and --token",
                                         paths.cluster_file));
  }
  return a;
}

Result<ClusterAccess> read_cluster_access_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::not_found(fmt::format("{} is missing", path));
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::invalid_argument(fmt::format("{} is not valid JSON", path));
  ClusterAccess a{j.value("address", ""), j.value("token", ""), j.value("tls_ca", "")};
  if (a.address.empty() || a.token.empty()) {
    return Status::invalid_argument(fmt::format("{} lacks address or token", path));
  }
  return a;
}

std::string launched_cluster_file(const NodePaths& paths, const std::string& cluster_name) {
  return fmt::format("{}/clusters/{}.json", paths.root, cluster_name);
}

pid_t running_pid(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return 0;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM) return 0;
  // A zombie has exited; so has a pid reused by something that is not llmctl.
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  std::string content;
  std::getline(stat, content);
  auto close_paren = content.rfind(')');
  if (close_paren != std::string::npos && close_paren + 2 < content.size() && content[close_paren + 2] == 'Z') return 0;
  std::ifstream cmd(fmt::format("/proc/{}/cmdline", pid));
  std::string argv0;
  std::getline(cmd, argv0, '\0');
  // The kernel shows an empty command line while a process is inside
  // execve() (the new image's arguments are not mapped yet); a daemon we
  // just spawned is exactly in that window, so empty means "starting",
  // unless it is a kernel thread (PF_KTHREAD, field 9 of stat).
  if (argv0.empty()) {
    std::istringstream fields(close_paren == std::string::npos ? std::string() : content.substr(close_paren + 2));
    std::string field;
    unsigned long flags = 0;
    for (int i = 3; i <= 9 && fields >> field; ++i) {
      if (i == 9) flags = std::strtoul(field.c_str(), nullptr, 10);
    }
    constexpr unsigned long kPfKthread = 0x00200000;
    return (flags & kPfKthread) != 0 || close_paren == std::string::npos ? 0 : static_cast<pid_t>(pid);
  }
  if (argv0.find("llmctl") == std::string::npos) return 0;
  return static_cast<pid_t>(pid);
}

Status write_pid_file(const std::string& path, pid_t pid) {
  // `start` and the daemon itself both write the daemon's pid file; a tmp
  // name of their own keeps one from renaming the other's half-written file.
  std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  {
    std::ofstream out(tmp);
    out << pid << "\n";
    if (!out) return Status::io_error(fmt::format("writing {}", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::io_error(fmt::format("renaming {}: {}", tmp, ec.message()));
  return Status::ok();
}

Result<pid_t> spawn_detached(const std::vector<std::string>& args, const std::vector<std::string>& extra_env,
                             const std::string& log_path) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(log_path).parent_path(), ec);
  char exe[4096] = {};
  ssize_t len = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) return Status::io_error("cannot find this binary (/proc/self/exe)");
  // extra_env replaces inherited variables of the same name (getenv takes the first).
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string_view entry(*e);
    bool replaced = false;
    for (const auto& x : extra_env) {
      auto eq = x.find('=');
      if (entry.substr(0, eq + 1) == std::string_view(x).substr(0, eq + 1)) replaced = true;
    }
    if (!replaced) env_strings.emplace_back(entry);
  }
  for (const auto& e : extra_env) env_strings.push_back(e);
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Status::io_error(fmt::format("opening {}: {}", log_path, std::strerror(errno)));
  // pipe_fds carries the daemon's pid from the middle child; exec_fds the
  // daemon's execve() outcome (a separate pipe, so the two never interleave).
  int pipe_fds[2], exec_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    ::close(log_fd);
    return Status::io_error(fmt::format("pipe: {}", std::strerror(errno)));
  }
  if (::pipe2(exec_fds, O_CLOEXEC) != 0) {
    ::close(log_fd);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return Status::io_error(fmt::format("pipe: {}", std::strerror(errno)));
  }
  // Double fork: the daemon is re-parented to init and never becomes our zombie.
  pid_t child = ::fork();
  if (child < 0) {
    int err = errno;
    for (int fd : {pipe_fds[0], pipe_fds[1], exec_fds[0], exec_fds[1], log_fd}) ::close(fd);
    return Status::io_error(fmt::format("fork: {}", std::strerror(err)));
  }
  if (child == 0) {
    ::setsid();
    pid_t grandchild = ::fork();
    if (grandchild == 0) {
      int devnull = ::open("/dev/null", O_RDONLY);
      if (devnull >= 0) ::dup2(devnull, 0);
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      ::execve(exe, argv.data(), envp.data());
      // Only reached when execve failed: tell the parent why.
      int err = errno;
      ssize_t w = ::write(exec_fds[1], &err, sizeof err);
      (void)w;
      ::_exit(127);
    }
    ssize_t w = ::write(pipe_fds[1], &grandchild, sizeof grandchild);
    (void)w;
    ::_exit(grandchild > 0 ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  ::close(exec_fds[1]);
  ::close(log_fd);
  pid_t daemon_pid = -1;
  ssize_t r = ::read(pipe_fds[0], &daemon_pid, sizeof daemon_pid);
  ::close(pipe_fds[0]);
  ::waitpid(child, nullptr, 0);
  if (r != sizeof daemon_pid || daemon_pid <= 0) {
    ::close(exec_fds[0]);
    return Status::io_error("could not start the daemon (fork failed)");
  }
  // The pipe is close-on-exec, so end-of-file means the daemon's execve()
  // went through; an errno instead means it failed.
  int exec_errno = 0;
  ssize_t e;
  do {
    e = ::read(exec_fds[0], &exec_errno, sizeof exec_errno);
  } while (e < 0 && errno == EINTR);
  ::close(exec_fds[0]);
  if (e == sizeof exec_errno) {
    return Status::io_error(fmt::format("could not run {}: {}", exe, std::strerror(exec_errno)));
  }
  return daemon_pid;
}

}  // namespace llmctl::control

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>

namespace llmctl::control {

Result<ClusterAccess> resolve_cluster_access(const std::string& address, const std::string& token,
                                             const NodePaths& paths) {
  return resolve_cluster_access(address, token, "", paths);
}

Result<ClusterAccess> resolve_cluster_access(const std::string& address, const std::string& token,
                                             const std::string& tls_ca, const NodePaths& paths) {
  auto local = read_cluster_access(paths);
  ClusterAccess a;
  if (!address.empty()) {
    a.address = address;
    a.token = !token.empty() ? token : local.is_ok() ? local->token : "";
    if (a.token.empty()) return Status::invalid_argument("--token (or LLMCTL_TOKEN) is required with --address");
    // This node's trust file is for its own cluster only.
    if (local.is_ok() && local->address == address) a.tls_ca = local->tls_ca;
  } else {
    if (!local.is_ok()) return local.status();
    a = *local;
    if (!token.empty()) a.token = token;
  }
  if (!tls_ca.empty()) a.tls_ca = tls_ca;
  return a;
}

std::string guess_node_address(const std::string& requested) {
  if (!requested.empty()) return requested;
  ifaddrs* list = nullptr;
  std::string found;
  if (::getifaddrs(&list) == 0) {
    for (ifaddrs* i = list; i; i = i->ifa_next) {
      if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) {
        continue;
      }
      char buf[INET_ADDRSTRLEN] = {};
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
      found = buf;
      break;
    }
    ::freeifaddrs(list);
  }
  return found.empty() ? "127.0.0.1" : found;
}

}  // namespace llmctl::control
