// llmctl stop: stop this node's daemons, leaving the cluster at once (issue #8).
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "cli/cli_context.h"
#include "runtime/control/control_client.h"
#include "runtime/control/daemon.h"

namespace llmctl::cli {
namespace {

using namespace std::chrono_literals;

// SIGTERM (or SIGKILL), then wait; SIGKILL once the grace period is over.
// True when the process is gone.
bool stop_process(pid_t pid, bool force, double grace_period_s) {
  ::kill(pid, force ? SIGKILL : SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int>(grace_period_s * 1000));
  while (std::chrono::steady_clock::now() < deadline) {
    if (::kill(pid, 0) != 0) return true;
    std::this_thread::sleep_for(20ms);
  }
  ::kill(pid, SIGKILL);
  for (int i = 0; i < 100 && ::kill(pid, 0) == 0; ++i) std::this_thread::sleep_for(20ms);
  return ::kill(pid, 0) != 0;
}

// --force kills the agent before it can say goodbye, so say it on its behalf.
void leave_on_behalf(const control::NodePaths& paths) {
  auto access = control::read_cluster_access(paths);
  std::ifstream in(paths.agent_dir + "/node_id");
  std::string node_id;
  if (!access.is_ok() || !(in >> node_id)) return;
  auto client = control::connect_to(*access, 1000ms);
  if (!client.is_ok()) return;
  (void)(*client)->call("node.leave", {{"node_id", node_id}, {"reason", "stopped"}}, 1000ms);
}

}  // namespace

void register_stop(CLI::App& app, CliContext& ctx) {
  struct Options {
    bool force = false;
    double grace_period_s = 10;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("stop", "Stop this node's llmctl daemons (a graceful stop leaves the cluster at once)");
  cmd->add_flag("--force", o->force, "Kill at once (SIGKILL) instead of a graceful stop");
  cmd->add_option("--grace-period", o->grace_period_s, "Seconds to wait before killing")->capture_default_str();
  cmd->add_option("--state-dir", ctx.global.state_dir, "Where this node keeps its state (same as the global flag)");
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      control::NodePaths paths(resolve_state_dir(ctx.global));
      pid_t agent = control::running_pid(paths.agent_pid);
      pid_t head = control::running_pid(paths.head_pid);
      if (agent == 0 && head == 0) {
        fmt::print("No llmctl daemons are running on this node (state dir {}).\n", paths.root);
        return kExitOk;
      }
      int rc = kExitOk;
      // The agent first: it tells the head this node leaves while the head still runs.
      if (agent) {
        if (o->force) leave_on_behalf(paths);
        if (stop_process(agent, o->force, o->grace_period_s)) {
          fmt::print("Stopped the agent (pid {}).\n", agent);
          std::filesystem::remove(paths.agent_pid);
        } else {
          rc = report_error("stop", Status::internal(fmt::format("the agent (pid {}) did not exit", agent)));
        }
      }
      if (head) {
        if (stop_process(head, o->force, o->grace_period_s)) {
          fmt::print("Stopped the head (pid {}).\n", head);
          std::filesystem::remove(paths.head_pid);
        } else {
          rc = report_error("stop", Status::internal(fmt::format("the head (pid {}) did not exit", head)));
        }
      }
      return rc;
    };
  });
}

}  // namespace llmctl::cli
