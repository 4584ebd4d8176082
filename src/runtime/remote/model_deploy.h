// The [[models]] of cluster.toml as `up` runs them: one detached `llmctl
// serve` per model on the head host (setsid and nohup, so it outlives the SSH
// session), started with the uploaded binary, the head's state dir (where it
// finds the cluster token) and --address the head's control plane, so ranks
// 1..tp-1 are placed on the cluster. Model i of the file (0-based) serves its
// API on ports.api + i.
//
// On the head, for model NAME:
//   <state>/serve/NAME.pid   the serve's pid
//   <state>/serve/NAME.cmd   the command line it was started with; a later
//                            `up` restarts the model when this differs
//   <state>/logs/serve-NAME.log  its stdout and stderr (appended)
//
// Not thread-safe; `up` and `down` call these from one thread per host.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "config/cluster_config.h"
#include "runtime/remote/host_probe.h"
#include "runtime/remote/ssh_session.h"

namespace llmctl::remote {

// What `up` does with one model, decided from the file and the head's probe.
struct ModelPlan {
  ModelConfig model;
  int port = 0;          // the API port on the head
  std::string command;   // the serve command line (env and binary included)
  // "start", "restart", "running" (left alone), "refuse" (the file asks for
  // something serve cannot do), "stop" (served, no longer in the file).
  std::string action;
  std::string reason;    // why restart / refuse
  pid_t pid = 0;         // the serve running before up (0: none)
};

// What a model ended as, for the summary and --json.
struct ModelOutcome {
  std::string name, action, url, log_file, reason;
  int port = 0, tp = 1;
  pid_t pid = 0;
};

// Why `up` cannot serve `m` ("pipeline parallel (pp = 2) is not supported
// yet"); empty when it can.
std::string unsupported_reason(const ModelConfig& m);

// The serve command line for model `m` on the head (env, binary, state dir,
// --address head_address, the model's settings, --port).
std::string serve_command(const ClusterConfig& c, const NodeConfig& head, const ModelConfig& m, int port,
                          const std::string& head_address);

// One plan per model of the file (file order), then one "stop" per model the
// head still serves that the file no longer lists. A running model is kept
// when its command is the same, it runs `bundle_sha256` and (for tp > 1)
// no node was (re)started by this `up`.
std::vector<ModelPlan> plan_models(const ClusterConfig& c, const NodeConfig& head, const std::string& head_address,
                                   const HostFacts& head_facts, const std::string& bundle_sha256,
                                   bool nodes_restarted);

// <state>/logs/serve-NAME.log as the head spells it (unexpanded).
std::string serve_log_file(const NodeConfig& head, const std::string& name);

// Stops the serves named (every one in <state>/serve when `names` is empty):
// SIGTERM, up to `grace_s` seconds, then SIGKILL; removes their pid and cmd
// files. Lines out: "stopped NAME PID" or "killed NAME PID".
std::string stop_serve_script(const NodeConfig& head, const std::vector<std::string>& names, int grace_s);

using PrintLine = std::function<void(const std::string& line)>;

// Runs the plans on the head over `session`: stops the "stop", "restart" and
// (when running) "refuse" ones, starts "start" and "restart", then polls
// until every model to serve answers GET /health with 200 (through the
// binary's `http-status` on the head, so no curl is needed there) or
// `deadline`. Outcomes in plan order; errors are "HOST: model NAME: why".
std::vector<ModelOutcome> apply_model_plans(SshSession& session, const NodeConfig& head, const std::string& head_ip,
                                            std::vector<ModelPlan>& plans,
                                            std::chrono::steady_clock::time_point deadline, const PrintLine& print,
                                            std::vector<std::string>& errors);

// GET `path` from host:port (HTTP/1.1, Connection: close): the response's
// status code, or 0 when nothing answered within timeout_s.
int http_status(const std::string& host, int port, const std::string& path, double timeout_s);

}  // namespace llmctl::remote
