#include "common/open_file_limit.h"

#include <sys/resource.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace llmctl {

Result<std::uint64_t> raise_open_file_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return Status::internal(fmt::format("getrlimit(RLIMIT_NOFILE): {}", std::strerror(errno)));
  }
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
      return Status::internal(fmt::format("setrlimit(RLIMIT_NOFILE, {}): {}", rl.rlim_max, std::strerror(errno)));
    }
    rl = raised;
  }
  return static_cast<std::uint64_t>(rl.rlim_cur);
}

}  // namespace llmctl
