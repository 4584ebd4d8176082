// One SSH connection to one host (libssh): TCP connect with a deadline,
// host-key check against known_hosts, public-key authentication (a key file,
// then the ssh-agent) and commands run with their output and exit code.
// Every error names the host and says which step failed and why.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace llmctl::remote {

struct SshOptions {
  std::string host;
  int port = 22;
  std::string user = "root";
  // Private key to offer; empty: ~/.ssh/id_ed25519 when it exists. The
  // ssh-agent (SSH_AUTH_SOCK) is tried after it either way.
  std::string key_file;
  // Empty: $HOME/.ssh/known_hosts.
  std::string known_hosts_file;
  // Trust and record a host key seen for the first time. A key that differs
  // from the recorded one is refused regardless.
  bool accept_new_host_keys = false;
  double connect_timeout_s = 10;
};

// What a command left behind. exit_code is -1 when the remote side sent no
// exit status (killed by a signal).
struct CommandResult {
  int exit_code = -1;
  std::string stdout_text;
  std::string stderr_text;
};

class SshSession {
 public:
  ~SshSession();
  SshSession(const SshSession&) = delete;
  SshSession& operator=(const SshSession&) = delete;

  // Connects, verifies the host key and authenticates. Errors:
  //   NOT_FOUND          the host name does not resolve
  //   UNAVAILABLE        TCP connect failed (the errno text), or SSH handshake failed
  //   DEADLINE_EXCEEDED  connect or handshake took longer than connect_timeout_s
  //   PERMISSION_DENIED  host key unknown / mismatched (with its fingerprint), or
  //                      authentication failed (with every key tried and why)
  static Result<std::unique_ptr<SshSession>> connect(const SshOptions& options);

  // Runs `command` through the remote user's login shell ($SHELL -c). timeout_s
  // <= 0: no limit; past it the command's process group is killed on the host
  // and DEADLINE_EXCEEDED returned.
  Result<CommandResult> run(const std::string& command, double timeout_s);

  // Runs `command` as given, without the pid wrapper run() uses to kill an
  // overrunning command; for short commands of our own.
  Result<CommandResult> run_plain(const std::string& command, double timeout_s);

  // Runs `command` as given with `input` on its stdin (then EOF): how secrets
  // (the cluster token) reach a command without showing in its argv.
  Result<CommandResult> run_with_input(const std::string& command, const std::string& input, double timeout_s);

  // Streams the local file `local_path` into `command`'s stdin (e.g.
  // `cat > FILE`), calling `progress(sent, total)` after every chunk; no SFTP
  // subsystem needed on the host. timeout_s bounds the reply after the data.
  using Progress = std::function<void(std::uint64_t sent, std::uint64_t total)>;
  Result<CommandResult> run_with_file(const std::string& command, const std::string& local_path,
                                      const Progress& progress, double timeout_s);

  // "user@host:port", for messages.
  const std::string& target() const { return target_; }

 private:
  struct Impl;
  explicit SshSession(std::unique_ptr<Impl> impl, std::string target);
  // Writes a command's stdin; called once the channel runs the command.
  using InputWriter = std::function<Status(void* channel)>;
  Result<CommandResult> run_channel(const std::string& command, double timeout_s, bool wrap,
                                    const InputWriter& input = {});
  std::unique_ptr<Impl> impl_;
  std::string target_;
};

// $HOME/.ssh/known_hosts (the passwd entry's home when HOME is unset).
std::string default_known_hosts_file();

// 'text' for a POSIX shell.
std::string shell_quote(const std::string& text);

}  // namespace llmctl::remote
