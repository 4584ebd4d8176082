// What `up` learns about a host before it changes anything there: one shell
// command (POSIX sh, coreutils, /proc) whose key=value lines are parsed here.
// It reports the OS and architecture, free disk where the bundle goes, which
// llmctl daemons of this node's state dir run, the installed files' SHA-256,
// the head's token if one was kept, the model servers `up` started there
// (<state>/serve/NAME.pid and .cmd) and the TCP ports that are listening.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "common/status.h"

namespace llmctl::remote {

struct HostFacts {
  std::string os_arch;                        // `uname -sm`, e.g. "Linux x86_64"
  std::string home;
  std::string disk_path;                      // nearest existing dir of the install dir
  std::int64_t free_bytes = -1;               // -1: df gave nothing usable
  pid_t head_pid = 0, agent_pid = 0;          // 0: not running
  // SHA-256 of what the running daemons execute (/proc/PID/exe); empty: not
  // running or unreadable. Differs from sha256["llmctl"] once a new binary
  // was uploaded under a running daemon.
  std::string head_exe_sha256, agent_exe_sha256;
  // A `doctor cluster.toml` listener still running (<state>/doctor/listen.pid),
  // e.g. from an interrupted run; it holds the cluster's ports. 0: none.
  pid_t doctor_pid = 0;
  std::map<std::string, std::string> sha256;  // installed file (relative) -> hash
  std::string cluster_json;                   // the node's <state>/cluster.json, one line; empty: none
  std::set<int> listening_ports;              // TCP LISTEN sockets, v4 and v6
  // Every <state>/serve/NAME.pid: pid 0 when that `llmctl serve` no longer
  // runs; command: what it was started with (<state>/serve/NAME.cmd).
  struct ServedModel {
    pid_t pid = 0;
    std::string exe_sha256, command;
  };
  std::map<std::string, ServedModel> served;
};

// A shell test that is true when the pid in $p is a running (not zombie)
// `llmctl serve` process.
std::string serve_alive_test();

// A path for the remote shell: "~/x" becomes "$HOME"/'x' (quotes stop tilde
// expansion), anything else is single-quoted.
std::string remote_path(const std::string& path);

// The probe command for a node with these directories.
std::string probe_command(const std::string& install_dir, const std::string& state_dir);

// Parses the probe's stdout.
Result<HostFacts> parse_probe_output(const std::string& text);

// "Linux x86_64" of this machine, as `uname -sm` prints it.
std::string local_os_arch();

}  // namespace llmctl::remote
