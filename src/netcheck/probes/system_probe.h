// system.*: limits that break multi-GPU inference long after start-up.
//   system.shm        /dev/shm size (NCCL and the engine's shared buffers; Docker's 64 MB default breaks NCCL)
//   system.nofile     RLIMIT_NOFILE (every rank, socket and listener of the node range takes a descriptor)
//   system.disk_state free space where logs and state go
//   system.disk_model the model folders exist and have room
//   system.clock      the kernel clock is disciplined by a time daemon
#pragma once

#include <vector>

#include "netcheck/check_result.h"
#include "netcheck/host_view.h"
#include "netcheck/probe_options.h"

namespace llmctl::netcheck {

std::vector<CheckResult> probe_system(const HostView& host, const ProbeOptions& options);

}  // namespace llmctl::netcheck
