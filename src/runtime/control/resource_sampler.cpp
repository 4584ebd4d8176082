#include "runtime/control/resource_sampler.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace llmctl::control {
namespace {

// MemTotal and MemAvailable in bytes.
std::pair<std::uint64_t, std::uint64_t> read_meminfo() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  std::uint64_t value = 0, total = 0, available = 0;
  while (in >> key >> value) {
    std::getline(in, unit);
    if (key == "MemTotal:") total = value * 1024;
    if (key == "MemAvailable:") available = value * 1024;
  }
  return {total, available};
}

}  // namespace

HostTotals probe_host_totals() {
  HostTotals t;
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  t.num_cpus = n > 0 ? static_cast<int>(n) : 1;
  t.memory_bytes = read_meminfo().first;
  return t;
}

nlohmann::json ResourceSampler::sample() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  std::uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  std::uint64_t busy = user + nice + system + irq + softirq + steal;
  std::uint64_t total = busy + idle + iowait;
  double percent = 0;
  if (last_total_ > 0 && total > last_total_) {
    percent = 100.0 * static_cast<double>(busy - last_busy_) / static_cast<double>(total - last_total_);
  }
  last_busy_ = busy;
  last_total_ = total;
  auto [mem_total, mem_available] = read_meminfo();
  nlohmann::json usage = {{"cpu_percent", percent},
                          {"memory_used_bytes", mem_total - std::min(mem_total, mem_available)},
                          {"memory_total_bytes", mem_total}};
  if (gpus_.available()) usage["gpus"] = gpu_usage_to_json(gpus_.sample());
  return usage;
}

}  // namespace llmctl::control
