// Daemon housekeeping shared by `start`, `stop`, `status`: where a node keeps
// its control-plane files in the state dir, pid files, the cluster token, and
// starting a detached copy of this binary.
//
//   <state>/cluster.json   {"address": "HEAD:PORT", "token": "..."} (0600): the cluster this node is in
//   <state>/head.pid, <state>/agent.pid
//   <state>/head/          the head's snapshot and log
//   <state>/agent/         node_id, bundles/ (bundle stdout/stderr)
//   <state>/logs/          daemon logs
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/status.h"

namespace llmctl::control {

struct NodePaths {
  explicit NodePaths(std::string state_dir);
  std::string root, cluster_file, head_pid, agent_pid, head_dir, agent_dir, logs_dir;
};

struct ClusterAccess {
  std::string address;  // HEAD:PORT
  std::string token;
  std::string tls_ca = {};  // PEM file the head's TLS certificate is checked against; empty: no TLS
};
Status write_cluster_access(const NodePaths& paths, const ClusterAccess& access);
Result<ClusterAccess> read_cluster_access(const NodePaths& paths);
// Any file of cluster.json's shape.
Result<ClusterAccess> read_cluster_access_file(const std::string& path);

// Where the machine that ran `llmctl up cluster.toml` keeps how to reach that
// cluster (cluster.json's shape), so `status --config cluster.toml` needs no
// token: <state>/clusters/<cluster name>.json.
std::string launched_cluster_file(const NodePaths& paths, const std::string& cluster_name);

// A fresh cluster token: 32 random bytes, hex.
std::string new_cluster_token();

// Writes a file with mode 0600 atomically (tmp + rename).
Status write_private_file(const std::string& path, const std::string& content);

// The pid in `path` if that process is alive (and not a zombie), else 0.
pid_t running_pid(const std::string& path);
Status write_pid_file(const std::string& path, pid_t pid);

// Starts `argv` (argv[0] is run as /proc/self/exe) in a new session, detached
// from this terminal, stdout and stderr appended to `log_path`, extra
// environment added. Returns its pid; it is not our child once this returns.
Result<pid_t> spawn_detached(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
                             const std::string& log_path);

}  // namespace llmctl::control

namespace llmctl::control {

// The head to talk to: --address/--token when given (a missing token is
// taken from this node's cluster.json), else this node's cluster.json. The TLS
// trust file is `tls_ca` when given, else the one in cluster.json.
Result<ClusterAccess> resolve_cluster_access(const std::string& address, const std::string& token,
                                             const NodePaths& paths);
Result<ClusterAccess> resolve_cluster_access(const std::string& address, const std::string& token,
                                             const std::string& tls_ca, const NodePaths& paths);

// The address this node advertises: `requested` when set, else the first
// non-loopback IPv4 address of an interface that is up, else 127.0.0.1.
std::string guess_node_address(const std::string& requested);

}  // namespace llmctl::control
