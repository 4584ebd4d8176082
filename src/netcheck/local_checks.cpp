#include "netcheck/local_checks.h"

#include "netcheck/probes/gpu_probe.h"
#include "netcheck/probes/hostname_probe.h"
#include "netcheck/probes/interfaces_probe.h"
#include "netcheck/probes/ports_probe.h"
#include "netcheck/probes/system_probe.h"

namespace llmctl::netcheck {

std::vector<CheckResult> run_local_checks(const HostView& host, const ProbeOptions& options) {
  std::vector<CheckResult> out;
  for (auto probe : {probe_ports, probe_hostname, probe_interfaces, probe_system, probe_gpu}) {
    auto found = probe(host, options);
    out.insert(out.end(), std::make_move_iterator(found.begin()), std::make_move_iterator(found.end()));
  }
  return out;
}

}  // namespace llmctl::netcheck
