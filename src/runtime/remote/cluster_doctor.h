// `llmctl doctor cluster.toml`: the doctor run on every host of the file over
// the same SSH path as `up`, merged into one report.
//
// 1. Every host at once: connect (host key, authentication), probe, upload the
//    bundle where it is missing or differs (as `up` does), copy the file to
//    <state_dir>/doctor/cluster.toml there, and run `llmctl doctor FILE
//    --local --json` (the host's own checks with the file's ports and [env]).
// 2. A doctor listener (`doctor FILE --listen`) started on every host, with a
//    fresh token on stdin.
// 3. `doctor FILE --outbound --json` on every host: reach every other host's
//    cluster ports, names as that host resolves them, versions and clocks; so
//    every pair is checked in both directions.
// 4. The listeners stopped, also when a step failed.
// A host SSH cannot reach gets one `ssh.connect` failure naming why, and the
// others are still checked.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "config/cluster_config.h"
#include "netcheck/check_result.h"
#include "runtime/remote/ssh_session.h"

namespace llmctl::remote {

struct ClusterDoctorOptions {
  std::string config_text;       // cluster.toml's bytes, copied to each host
  bool accept_new_host_keys = false;
  double connect_timeout_s = 10;
  std::string known_hosts_file;  // empty: ~/.ssh/known_hosts
  // Progress lines (uploads, steps), from several threads, one call per line.
  std::function<void(const std::string& line)> print;
};

// Results grouped by host in the file's order: ssh.*, the host's local
// checks, then what the other hosts found about it.
std::vector<netcheck::CheckResult> cluster_doctor(const ClusterConfig& config, const ClusterDoctorOptions& options);

// Step 1's checks on one host whose bundle is in place: copies `config_text`
// to <state_dir>/doctor/cluster.toml there and runs `llmctl doctor FILE --local
// --json`; the results are named by node.host. What `up` runs during pre-flight.
Result<std::vector<netcheck::CheckResult>> run_local_doctor(SshSession& session, const NodeConfig& node,
                                                            const std::string& config_text);

}  // namespace llmctl::remote
