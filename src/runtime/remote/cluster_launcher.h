// `llmctl up` and `llmctl down`: a whole cluster from cluster.toml over SSH.
//
// up:   pre-flight on every host in parallel (connect, host key, auth, OS and
//       architecture, free disk for the bundle, the head's port) — any failure
//       stops here, before anything is changed anywhere; then the bundle is
//       uploaded where its SHA-256 differs, the doctor's local checks run on
//       every host that is to start a daemon (a failure stops up before
//       anything starts), daemons running another binary are restarted (the
//       head first), the head started, the workers
//       started in parallel (workers dropped from the file since the last `up`
//       are stopped), the head is asked until every node is Active, and then
//       the file's [[models]] are served from the head (model_deploy.h):
//       started, restarted when their settings changed, stopped when no
//       longer listed, each waited for until its /health answers 200.
// down: the head's model servers stopped first, then the workers in
//       parallel, then the head; state dirs removed unless kept; every
//       daemon's pid checked gone.
//
// The launching machine keeps <state>/clusters/<name>.json: the head address
// and token (the shape of a node's cluster.json, so `status --config` reads
// it) plus the nodes it started, so a worker removed from the file can still
// be found and stopped.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "config/cluster_config.h"
#include "runtime/remote/model_deploy.h"

namespace llmctl::remote {

struct LaunchOptions {
  bool dry_run = false;
  bool accept_new_host_keys = false;
  bool keep_state = false;       // down only
  double timeout_s = 120;        // up: until every node is Active, then again until every model is healthy
  double connect_timeout_s = 10; // per host
  std::string local_state_dir;   // where clusters/<name>.json is kept
  std::string known_hosts_file;  // empty: ~/.ssh/known_hosts
  // up: cluster.toml's bytes, for the doctor's local checks on every host about
  // to start a daemon (after the upload, before anything starts); a failing
  // check stops up there. Empty or skip_doctor: not run.
  std::string config_text;
  bool skip_doctor = false;
  // Asked with the plan before anything changes; false aborts. Empty: go on.
  std::function<bool(const std::string& plan)> confirm;
  // Progress lines ("lf002: uploading llmctl ..."), from several threads, one call per line.
  std::function<void(const std::string& line)> print;
};

struct NodeOutcome {
  std::string host, role, address;
  std::string action;   // up: started, running, restarted, stopped (removed from the file); down: stopped, not running
  bool uploaded = false;
  std::string state;    // as the head lists it at the end (up); empty when unknown
};

struct LaunchReport {
  std::string cluster, head_address, dashboard_url, api_url, token_file;
  bool changed = false;
  bool aborted = false;               // confirm() said no
  std::vector<NodeOutcome> nodes;
  std::vector<ModelOutcome> models;   // up: the file's models, then the ones stopped; down: the ones stopped
  std::vector<std::string> notices;
  std::vector<std::string> errors;    // "HOST: what failed and why"; empty: success
  std::string failed_stage;           // "pre-flight", "upload", "doctor", "start", "wait", "models", "stop"
};

LaunchReport cluster_up(const ClusterConfig& config, const LaunchOptions& options);
LaunchReport cluster_down(const ClusterConfig& config, const LaunchOptions& options);

// The launching machine's record for a cluster: <local_state_dir>/clusters/<name>.json.
std::string launch_record_file(const std::string& local_state_dir, const std::string& cluster_name);

}  // namespace llmctl::remote
