// Turns a failed collective into one error that names the culprit: every
// peer's LivenessSocket is probed, so a peer whose process is gone, one whose
// host does not answer, and one that is alive but stuck are told apart.
// Shared by the Gloo and NCCL communicators.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/status.h"
#include "runtime/dist/rank_endpoint.h"

namespace llmctl::dist {

struct GroupFailure {
  std::string self;  // "tp rank 1 on host-b (10.0.0.2, eth1)"
  int rank = 0;
  const std::vector<RankEndpoint>* endpoints = nullptr;  // by rank
  std::chrono::milliseconds timeout{0};                   // the group's
  std::string group;
  std::string store_name;
  std::string backend;  // "gloo", "nccl": labels the library's own words
};

// "<self>: <op> failed: rank 2 (...) has exited ... [gloo: <detail>]", or
// DEADLINE_EXCEEDED "... timed out after N ms waiting for ..." when
// `timed_out` and every peer still runs. `waited_for`: the peer the library
// named, if known (else "a peer").
Status describe_group_failure(const GroupFailure& failure, const std::string& op, const std::string& detail,
                              bool timed_out, const std::string& waited_for = "");

// "<self>" for messages: "tp rank 1 on host-b (10.0.0.2, eth1)".
std::string describe_self(const std::string& group, const RankEndpoint& self);

}  // namespace llmctl::dist
