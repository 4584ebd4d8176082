// gpu.*: what accelerators and fabrics this node brings.
//   gpu.devices     GPUs found through the driver (dlopen); none is a warning on a CPU node
//   gpu.versions    driver, CUDA and NCCL versions
//   gpu.infiniband  InfiniBand devices under /sys/class/infiniband
#pragma once

#include <vector>

#include "netcheck/check_result.h"
#include "netcheck/host_view.h"
#include "netcheck/probe_options.h"

namespace llmctl::netcheck {

std::vector<CheckResult> probe_gpu(const HostView& host, const ProbeOptions& options);

}  // namespace llmctl::netcheck
