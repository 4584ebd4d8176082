#include "netcheck/probes/system_probe.h"

#include <fmt/format.h>

namespace llmctl::netcheck {
namespace {

constexpr std::uint64_t kMiB = 1ull << 20;
constexpr std::uint64_t kGiB = 1ull << 30;
constexpr std::uint64_t kShmFailBytes = 512 * kMiB;
constexpr std::uint64_t kShmWarnBytes = 1 * kGiB;
constexpr std::uint64_t kNofileWanted = 65536;
constexpr std::uint64_t kNofileMinimum = 8192;  // the node range alone needs 2001
constexpr std::uint64_t kStateDirWarnBytes = 1 * kGiB;
constexpr std::uint64_t kModelDirWarnBytes = 10 * kGiB;

CheckResult make(const ProbeOptions& o, std::string id, CheckStatus status, std::string message,
                 std::string fix = "") {
  return CheckResult{o.node_name, std::move(id), status, std::move(message), std::move(fix)};
}

std::string gib(std::uint64_t bytes) { return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / kGiB); }

// The nearest existing ancestor, so a state dir not created yet still gets a number.
Result<DiskSpace> disk_space_of(const HostView& host, std::string path, std::string* measured) {
  while (true) {
    auto d = host.disk_space(path);
    if (d.is_ok() || path.empty() || path == "/") {
      *measured = path;
      return d;
    }
    auto slash = path.find_last_of('/');
    path = slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
  }
}

const char* const kTimeDaemons[] = {"chronyd", "ntpd", "systemd-timesyn", "ptp4l", "phc2sys", "openntpd", "timesyncd"};

std::string running_time_daemon(const HostView& host) {
  for (const auto& entry : host.list_dir("/proc")) {
    if (entry.empty() || entry.find_first_not_of("0123456789") != std::string::npos) continue;
    auto comm = host.read_file("/proc/" + entry + "/comm");
    if (!comm.is_ok()) continue;
    std::string name = *comm;
    while (!name.empty() && name.back() == '\n') name.pop_back();
    for (const char* d : kTimeDaemons) {
      if (name == d) return name;
    }
  }
  return "";
}

}  // namespace

std::vector<CheckResult> probe_system(const HostView& host, const ProbeOptions& options) {
  std::vector<CheckResult> out;

  auto shm = host.disk_space("/dev/shm");
  if (!shm.is_ok()) {
    out.push_back(make(options, "system.shm", CheckStatus::kFail, "/dev/shm is missing: NCCL needs shared memory",
                       "mount -t tmpfs -o size=16g tmpfs /dev/shm"));
  } else if (shm->total_bytes < kShmWarnBytes) {
    out.push_back(make(options, "system.shm",
                       shm->total_bytes < kShmFailBytes ? CheckStatus::kFail : CheckStatus::kWarn,
                       fmt::format("/dev/shm is only {} MiB: NCCL and the engine run out of shared memory", shm->total_bytes / kMiB),
                       "mount -o remount,size=16g /dev/shm (in Docker: --shm-size=16g or --ipc=host)"));
  } else {
    out.push_back(make(options, "system.shm", CheckStatus::kOk, fmt::format("/dev/shm is {}", gib(shm->total_bytes))));
  }

  FileLimit nofile = host.open_file_limit();
  if (nofile.soft >= kNofileWanted) {
    out.push_back(make(options, "system.nofile", CheckStatus::kOk, fmt::format("open-file limit {}", nofile.soft)));
  } else if (nofile.hard >= kNofileMinimum) {
    // llmctl raises its own soft limit up to the hard limit, so this only warns.
    out.push_back(make(options, "system.nofile", CheckStatus::kWarn,
                       fmt::format("open-file limit is {} (hard {}); llmctl raises its own, other tools may not", nofile.soft, nofile.hard),
                       "ulimit -n 65536 (or LimitNOFILE=65536 in the systemd unit)"));
  } else {
    out.push_back(make(options, "system.nofile", CheckStatus::kFail,
                       fmt::format("open-file hard limit is {}: too few for the node range and ranks", nofile.hard),
                       "echo '* - nofile 65536' >> /etc/security/limits.conf (or LimitNOFILE=65536), then log in again"));
  }

  if (!options.state_dir.empty()) {
    std::string measured;
    auto d = disk_space_of(host, options.state_dir, &measured);
    if (!d.is_ok()) {
      out.push_back(make(options, "system.disk_state", CheckStatus::kSkip, fmt::format("cannot stat {}", options.state_dir)));
    } else {
      out.push_back(make(options, "system.disk_state", d->free_bytes < kStateDirWarnBytes ? CheckStatus::kWarn : CheckStatus::kOk,
                         fmt::format("{} free in {} (state dir {})", gib(d->free_bytes), measured, options.state_dir),
                         d->free_bytes < kStateDirWarnBytes ? "free space there or set --state-dir elsewhere" : ""));
    }
  }

  for (const auto& dir : options.model_dirs) {
    auto d = host.disk_space(dir);
    if (!d.is_ok()) {
      out.push_back(make(options, "system.disk_model", CheckStatus::kFail, fmt::format("model folder {} does not exist here", dir),
                         fmt::format("copy the model to {} on this node (e.g. rsync -a <src>/ {}:{})", dir, options.node_name, dir)));
    } else {
      bool low = d->free_bytes < kModelDirWarnBytes;
      out.push_back(make(options, "system.disk_model", low ? CheckStatus::kWarn : CheckStatus::kOk,
                         fmt::format("model folder {} exists; {} free there", dir, gib(d->free_bytes)),
                         low ? "free space on that disk before adding models" : ""));
    }
  }

  if (host.clock_synchronized()) {
    out.push_back(make(options, "system.clock", CheckStatus::kOk, "clock is synchronised (kernel NTP status)"));
  } else {
    std::string daemon = running_time_daemon(host);
    if (!daemon.empty()) {
      out.push_back(make(options, "system.clock", CheckStatus::kWarn,
                         fmt::format("{} is running but the kernel clock is not synchronised yet", daemon),
                         "chronyc tracking (or timedatectl timesync-status) to see why"));
    } else {
      out.push_back(make(options, "system.clock", CheckStatus::kWarn,
                         "no time synchronisation daemon found and the kernel clock is not synchronised; node clocks may drift",
                         "apt install chrony (or systemctl enable --now systemd-timesyncd)"));
    }
  }
  return out;
}

}  // namespace llmctl::netcheck
