// ProcessSupervisor: runs the bundles an agent was told to launch as child
// processes, restarts them by policy, and reports every state change.
//
// Each child gets its own process group (so a stop reaches its children too),
// dies with the agent (PR_SET_PDEATHSIG), and writes stdout and stderr
// through pipes that the agent copies, each line time-stamped, to
//   <log_dir>/<group_id>-<index>.out / .err
// appended across restarts, with a line from the supervisor at every start
// and exit (output_capture.h). Exits are found by polling waitpid every 100 ms on the
// io_context, so no SIGCHLD handler races with other code.
//
// Threading: single-threaded, on the agent's io_context.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <asio.hpp>
#include <nlohmann/json.hpp>

#include "common/status.h"

namespace llmctl::control {

struct BundleSpec {
  std::string group_id;
  std::size_t index = 0;
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  std::string restart = "never";  // never, on_failure, always
  int max_restarts = 3;
  // The node's GPUs the head gave it: the child's CUDA_VISIBLE_DEVICES,
  // mapped through the agent's own (gpu_indices.h). Unset: left as inherited.
  std::optional<std::vector<int>> gpu_indices;
};

struct BundleProcess {
  BundleSpec spec;
  pid_t pid = 0;
  std::string state;  // running, restarting, exited, failed, stopped
  int exit_code = 0;  // exit status, or 128 + signal
  int num_restarts = 0;
  nlohmann::json to_json() const;
};

class ProcessSupervisor {
 public:
  using Key = std::pair<std::string, std::size_t>;  // (group id, bundle index)
  using UpdateHandler = std::function<void(const BundleProcess&)>;

  ProcessSupervisor(asio::io_context& io, std::string log_dir, UpdateHandler on_update);
  ~ProcessSupervisor();

  // Starts the bundle unless it already runs. The handler sees "running"
  // (or "failed" with exit code 127, and why in its .err log, when it cannot start).
  Status launch(const BundleSpec& spec);
  // SIGTERM to the process group, SIGKILL after `grace_ms`; no restart.
  void stop(const Key& key, int grace_ms);
  // Stops everything and waits (blocking, up to grace_ms + a little).
  void stop_all(int grace_ms);
  std::vector<BundleProcess> list() const;

 private:
  Status spawn(BundleProcess& p);
  void poll();

  asio::io_context& io_;
  std::string log_dir_;
  UpdateHandler on_update_;
  asio::steady_timer poll_timer_;
  std::map<Key, BundleProcess> processes_;
};

}  // namespace llmctl::control
