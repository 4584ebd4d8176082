// Every local probe, in the order the report shows them.
#pragma once

#include <vector>

#include "netcheck/check_result.h"
#include "netcheck/host_view.h"
#include "netcheck/probe_options.h"

namespace llmctl::netcheck {

std::vector<CheckResult> run_local_checks(const HostView& host, const ProbeOptions& options);

}  // namespace llmctl::netcheck
