#include "runtime/remote/ssh_session.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libssh/libssh.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include <fmt/format.h>

namespace llmctl::remote {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_left(Clock::time_point deadline) {
  return std::chrono::duration<double>(deadline - Clock::now()).count();
}

std::string home_dir() {
  if (const char* home = std::getenv("HOME"); home && *home) return home;
  if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_dir) return pw->pw_dir;
  return "/";
}

std::string errno_text(int err) { return std::strerror(err); }

// One TCP connect with our own deadline, so an unreachable host is reported
// with the kernel's reason per address rather than libssh's generic text.
Result<int> tcp_connect(const std::string& host, int port, Clock::time_point deadline, const std::string& target) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list); rc != 0) {
    std::string why = rc == EAI_SYSTEM ? errno_text(errno) : ::gai_strerror(rc);
    if (rc == EAI_NONAME || rc == EAI_FAIL || rc == EAI_NODATA)
      return Status::not_found(fmt::format("{}: cannot resolve host '{}': {}", target, host, why));
    return Status::unavailable(fmt::format("{}: cannot resolve host '{}': {}", target, host, why));
  }
  std::string errors;
  bool timed_out = false;
  for (addrinfo* ai = list; ai; ai = ai->ai_next) {
    char address[NI_MAXHOST] = "?";
    ::getnameinfo(ai->ai_addr, ai->ai_addrlen, address, sizeof address, nullptr, 0, NI_NUMERICHOST);
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      errors += fmt::format("{}{}: socket: {}", errors.empty() ? "" : "; ", address, errno_text(errno));
      continue;
    }
    int err = 0;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        double left = seconds_left(deadline);
        int n = left > 0 ? ::poll(&p, 1, static_cast<int>(left * 1000) + 1) : 0;
        if (n == 0) {
          err = ETIMEDOUT;
          timed_out = true;
        } else if (n < 0) {
          err = errno;
        } else {
          socklen_t len = sizeof err;
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        }
      }
    }
    if (err == 0) {
      ::freeaddrinfo(list);
      // libssh drives the socket in its own (blocking) mode.
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      return fd;
    }
    ::close(fd);
    errors += fmt::format("{}{} port {}: {}", errors.empty() ? "" : "; ", address, port,
                          err == ETIMEDOUT && timed_out ? "no answer (connect timed out)" : errno_text(err));
    if (timed_out) break;
  }
  ::freeaddrinfo(list);
  if (timed_out) return Status::deadline_exceeded(fmt::format("{}: unreachable: {}", target, errors));
  return Status::unavailable(fmt::format("{}: unreachable: {}", target, errors));
}

// "ssh-ed25519 SHA256:..." of the server's key.
Result<std::string> server_fingerprint(ssh_session s, const std::string& target) {
  ssh_key key = nullptr;
  if (ssh_get_server_publickey(s, &key) != SSH_OK)
    return Status::unavailable(fmt::format("{}: no host key from the server: {}", target, ssh_get_error(s)));
  unsigned char* hash = nullptr;
  size_t len = 0;
  int rc = ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &len);
  std::string type = ssh_key_type_to_char(ssh_key_type(key)) ? ssh_key_type_to_char(ssh_key_type(key)) : "?";
  ssh_key_free(key);
  if (rc != 0) return Status::internal(fmt::format("{}: cannot hash the host key", target));
  char* fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len);
  ssh_clean_pubkey_hash(&hash);
  std::string out = fmt::format("{} {}", type, fp ? fp : "?");
  ssh_string_free_char(fp);
  return out;
}

// known_hosts is appended to by every session that accepts a key; one writer at a time.
std::mutex g_known_hosts_mutex;

Status verify_host_key(ssh_session s, const SshOptions& o, const std::string& known_hosts,
                       const std::string& target) {
  ASSIGN_OR_RETURN(std::string fingerprint, server_fingerprint(s, target));
  std::lock_guard lock(g_known_hosts_mutex);
  switch (ssh_session_is_known_server(s)) {
    case SSH_KNOWN_HOSTS_OK:
      return Status::ok();
    case SSH_KNOWN_HOSTS_CHANGED:
      return Status::permission_denied(fmt::format(
          "{}: host key mismatch: the server offers {}, but {} records a different key for it "
          "(a reinstalled host, or someone in the middle); if the change is expected, remove the old entry "
          "with `ssh-keygen -R {}`",
          target, fingerprint, known_hosts, o.host));
    case SSH_KNOWN_HOSTS_OTHER:
      return Status::permission_denied(fmt::format(
          "{}: host key mismatch: the server offers {}, but {} records a key of another type for it; "
          "if the change is expected, remove the old entry with `ssh-keygen -R {}`",
          target, fingerprint, known_hosts, o.host));
    case SSH_KNOWN_HOSTS_NOT_FOUND:
    case SSH_KNOWN_HOSTS_UNKNOWN:
      if (!o.accept_new_host_keys)
        return Status::permission_denied(fmt::format(
            "{}: host key not trusted: {} is not in {}; check it and pass --accept-new-host-keys to record it",
            target, fingerprint, known_hosts));
      if (std::string dir = known_hosts.substr(0, known_hosts.rfind('/')); !dir.empty() && dir != known_hosts)
        ::mkdir(dir.c_str(), 0700);  // an existing dir is fine; a real failure shows below
      if (ssh_session_update_known_hosts(s) != SSH_OK)
        return Status::io_error(fmt::format("{}: cannot record host key {} in {}: {}", target, fingerprint,
                                            known_hosts, ssh_get_error(s)));
      return Status::ok();
    case SSH_KNOWN_HOSTS_ERROR:
    default:
      return Status::io_error(
          fmt::format("{}: cannot check the host key against {}: {}", target, known_hosts, ssh_get_error(s)));
  }
}

// Tries the key file, then the agent; the error lists each attempt and its outcome.
Status authenticate(ssh_session s, const SshOptions& o, const std::string& target) {
  int rc = ssh_userauth_none(s, nullptr);
  if (rc == SSH_AUTH_SUCCESS) return Status::ok();
  if (rc == SSH_AUTH_ERROR)
    return Status::unavailable(fmt::format("{}: authentication: {}", target, ssh_get_error(s)));
  std::vector<std::string> tried;

  std::string key_file = o.key_file;
  bool explicit_key = !key_file.empty();
  if (!explicit_key) key_file = home_dir() + "/.ssh/id_ed25519";
  if (key_file.rfind("~/", 0) == 0) key_file = home_dir() + key_file.substr(1);
  if (::access(key_file.c_str(), R_OK) != 0) {
    if (explicit_key || errno != ENOENT)
      tried.push_back(fmt::format("key {} (cannot read it: {})", key_file, errno_text(errno)));
  } else {
    ssh_key key = nullptr;
    if (ssh_pki_import_privkey_file(key_file.c_str(), nullptr, nullptr, nullptr, &key) != SSH_OK) {
      tried.push_back(fmt::format("key {} (not a private key llmctl can use, or protected by a passphrase)", key_file));
    } else {
      rc = ssh_userauth_publickey(s, nullptr, key);
      ssh_key_free(key);
      if (rc == SSH_AUTH_SUCCESS) return Status::ok();
      if (rc == SSH_AUTH_ERROR)
        return Status::unavailable(fmt::format("{}: authentication with key {}: {}", target, key_file, ssh_get_error(s)));
      tried.push_back(fmt::format("key {} ({})", key_file, rc == SSH_AUTH_PARTIAL ? "partial: more factors required" : "refused by the server"));
    }
  }

  const char* agent = std::getenv("SSH_AUTH_SOCK");
  if (!agent || !*agent) {
    tried.push_back("ssh-agent (none: SSH_AUTH_SOCK is not set)");
  } else {
    rc = ssh_userauth_agent(s, nullptr);
    if (rc == SSH_AUTH_SUCCESS) return Status::ok();
    tried.push_back(rc == SSH_AUTH_DENIED ? fmt::format("ssh-agent at {} (no key accepted)", agent)
                                          : fmt::format("ssh-agent at {} ({})", agent, ssh_get_error(s)));
  }
  std::string list;
  for (const auto& t : tried) list += (list.empty() ? "" : ", ") + t;
  return Status::permission_denied(fmt::format("{}: authentication failed; tried: {}", target, list));
}

}  // namespace

struct SshSession::Impl {
  ssh_session session = nullptr;
  ~Impl() {
    if (session) {
      ssh_disconnect(session);
      ssh_free(session);
    }
  }
};

SshSession::SshSession(std::unique_ptr<Impl> impl, std::string target)
    : impl_(std::move(impl)), target_(std::move(target)) {}

SshSession::~SshSession() = default;

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string default_known_hosts_file() { return home_dir() + "/.ssh/known_hosts"; }

Result<std::unique_ptr<SshSession>> SshSession::connect(const SshOptions& o) {
  static std::once_flag init_once;
  std::call_once(init_once, [] { ssh_init(); });
  std::string target = fmt::format("{}@{}:{}", o.user, o.host, o.port);
  if (o.host.empty()) return Status::invalid_argument("ssh: empty host name");
  auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(o.connect_timeout_s));
  ASSIGN_OR_RETURN(int fd, tcp_connect(o.host, o.port, deadline, target));

  auto impl = std::make_unique<Impl>();
  impl->session = ssh_new();
  if (!impl->session) {
    ::close(fd);
    return Status::internal(fmt::format("{}: ssh_new failed", target));
  }
  ssh_session s = impl->session;
  std::string known_hosts = o.known_hosts_file.empty() ? default_known_hosts_file() : o.known_hosts_file;
  // The handshake gets what is left of the connect deadline.
  double left = std::max(0.1, seconds_left(deadline));
  long timeout_s = static_cast<long>(left);
  long timeout_us = static_cast<long>((left - static_cast<double>(timeout_s)) * 1e6);
  int port = o.port;
  int no = 0;
  socket_t sock = fd;
  if (ssh_options_set(s, SSH_OPTIONS_HOST, o.host.c_str()) != SSH_OK ||
      ssh_options_set(s, SSH_OPTIONS_PORT, &port) != SSH_OK ||
      ssh_options_set(s, SSH_OPTIONS_USER, o.user.c_str()) != SSH_OK ||
      ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, known_hosts.c_str()) != SSH_OK ||
      ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no) != SSH_OK ||
      ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &timeout_s) != SSH_OK ||
      ssh_options_set(s, SSH_OPTIONS_TIMEOUT_USEC, &timeout_us) != SSH_OK) {
    ::close(fd);
    return Status::invalid_argument(fmt::format("{}: ssh options: {}", target, ssh_get_error(s)));
  }
  // From here on libssh owns the socket and closes it.
  if (ssh_options_set(s, SSH_OPTIONS_FD, &sock) != SSH_OK) {
    ::close(fd);
    return Status::internal(fmt::format("{}: ssh options: {}", target, ssh_get_error(s)));
  }
  if (ssh_connect(s) != SSH_OK) {
    if (seconds_left(deadline) <= 0.05)
      return Status::deadline_exceeded(fmt::format("{}: SSH handshake timed out after {} s (TCP connected; {})",
                                                   target, o.connect_timeout_s, ssh_get_error(s)));
    return Status::unavailable(fmt::format("{}: SSH handshake failed: {}", target, ssh_get_error(s)));
  }
  RETURN_IF_ERROR(verify_host_key(s, o, known_hosts, target));
  RETURN_IF_ERROR(authenticate(s, o, target));
  return std::unique_ptr<SshSession>(new SshSession(std::move(impl), std::move(target)));
}

Result<CommandResult> SshSession::run(const std::string& command, double timeout_s) {
  return run_channel(command, timeout_s, true);
}

Result<CommandResult> SshSession::run_plain(const std::string& command, double timeout_s) {
  return run_channel(command, timeout_s, false);
}

namespace {

// Writes all of `data` to the channel (libssh blocks until the window allows).
Status write_all(ssh_channel ch, ssh_session s, const char* data, size_t size, const std::string& target) {
  while (size > 0) {
    uint32_t chunk = static_cast<uint32_t>(std::min<size_t>(size, 1u << 20));
    int n = ssh_channel_write(ch, data, chunk);
    if (n == SSH_ERROR) return Status::unavailable(fmt::format("{}: connection lost while sending input: {}", target, ssh_get_error(s)));
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Status::ok();
}

}  // namespace

Result<CommandResult> SshSession::run_with_input(const std::string& command, const std::string& input, double timeout_s) {
  return run_channel(command, timeout_s, false, [&](void* channel) {
    auto ch = static_cast<ssh_channel>(channel);
    RETURN_IF_ERROR(write_all(ch, impl_->session, input.data(), input.size(), target_));
    ssh_channel_send_eof(ch);
    return Status::ok();
  });
}

Result<CommandResult> SshSession::run_with_file(const std::string& command, const std::string& local_path,
                                                const Progress& progress, double timeout_s) {
  std::FILE* f = std::fopen(local_path.c_str(), "rb");
  if (!f) return Status::io_error(fmt::format("cannot read {}: {}", local_path, errno_text(errno)));
  struct FileCloser {
    std::FILE* f;
    ~FileCloser() { std::fclose(f); }
  } closer{f};
  struct stat st{};
  ::fstat(::fileno(f), &st);
  auto total = static_cast<std::uint64_t>(st.st_size);
  return run_channel(command, timeout_s, false, [&](void* channel) {
    auto ch = static_cast<ssh_channel>(channel);
    std::vector<char> buf(1 << 20);
    std::uint64_t sent = 0;
    for (;;) {
      size_t n = std::fread(buf.data(), 1, buf.size(), f);
      if (n == 0) break;
      RETURN_IF_ERROR(write_all(ch, impl_->session, buf.data(), n, target_));
      sent += n;
      if (progress) progress(sent, total);
    }
    if (std::ferror(f)) return Status::io_error(fmt::format("reading {}: {}", local_path, errno_text(errno)));
    ssh_channel_send_eof(ch);
    return Status::ok();
  });
}

Result<CommandResult> SshSession::run_channel(const std::string& command, double timeout_s, bool wrap,
                                              const InputWriter& input) {
  ssh_session s = impl_->session;
  ssh_channel ch = ssh_channel_new(s);
  if (!ch) return Status::internal(fmt::format("{}: cannot create a channel: {}", target_, ssh_get_error(s)));
  struct ChannelGuard {
    ssh_channel ch;
    ~ChannelGuard() {
      ssh_channel_close(ch);
      ssh_channel_free(ch);
    }
  } guard{ch};
  if (ssh_channel_open_session(ch) != SSH_OK)
    return Status::unavailable(fmt::format("{}: cannot open a session channel: {}", target_, ssh_get_error(s)));
  // The remote shell first prints its pid, then becomes the command through
  // the user's shell: a command that overruns its timeout can then be killed
  // with its whole process group. (OpenSSH refuses signal requests for root
  // sessions, and closing the channel leaves a pty-less command running.)
  std::string wrapped = !wrap ? command : "printf '%d\\n' $$; exec \"${SHELL:-/bin/sh}\" -c " + shell_quote(command);
  if (ssh_channel_request_exec(ch, wrapped.c_str()) != SSH_OK)
    return Status::unavailable(fmt::format("{}: the server refused to run the command: {}", target_, ssh_get_error(s)));
  if (input) RETURN_IF_ERROR(input(ch));

  bool limited = timeout_s > 0;
  auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(limited ? timeout_s : 0));
  CommandResult result;
  char buf[16384];
  for (;;) {
    if (limited && Clock::now() >= deadline) {
      size_t eol = result.stdout_text.find('\n');
      std::string pid = eol == std::string::npos ? "" : result.stdout_text.substr(0, eol);
      std::string killed = "its pid never arrived, so it may still run";
      if (wrap && !pid.empty() && pid.find_first_not_of("0123456789") == std::string::npos) {
        auto kill = run_plain(fmt::format("kill -KILL -- -{0} 2>/dev/null || kill -KILL {0}", pid), 5);
        killed = kill.is_ok() && kill->exit_code == 0 ? fmt::format("killed its process group {}", pid)
                                                      : fmt::format("could not kill its process group {}", pid);
      }
      return Status::deadline_exceeded(
          fmt::format("{}: command did not finish within {} s ({})", target_, timeout_s, killed));
    }
    // Short waits on stdout keep the deadline responsive; stderr is drained between them.
    int n = ssh_channel_read_timeout(ch, buf, sizeof buf, 0, 100);
    if (n == SSH_ERROR)
      return Status::unavailable(fmt::format("{}: connection lost while reading output: {}", target_, ssh_get_error(s)));
    if (n > 0) result.stdout_text.append(buf, static_cast<size_t>(n));
    int e = ssh_channel_read_nonblocking(ch, buf, sizeof buf, 1);
    if (e == SSH_ERROR)
      return Status::unavailable(fmt::format("{}: connection lost while reading output: {}", target_, ssh_get_error(s)));
    if (e > 0) result.stderr_text.append(buf, static_cast<size_t>(e));
    if (n <= 0 && e <= 0 && ssh_channel_is_eof(ch)) break;
  }
  result.exit_code = ssh_channel_get_exit_status(ch);
  if (!wrap) return result;
  size_t eol = result.stdout_text.find('\n');
  if (eol == std::string::npos)
    return Status::unavailable(fmt::format("{}: the remote shell did not start the command (no pid line; stderr: {})",
                                           target_, result.stderr_text));
  result.stdout_text.erase(0, eol + 1);
  return result;
}

}  // namespace llmctl::remote
