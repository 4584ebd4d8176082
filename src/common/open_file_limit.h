// The process's open-file limit: every client connection (serve) and every
// probe listener (doctor) holds a descriptor, and distributions start
// processes with a soft RLIMIT_NOFILE of 1024, well below "thousands of
// connections" or the 2,001 ports of the node range.
#pragma once

#include <cstdint>

#include "common/status.h"

namespace llmctl {

// Raises the soft RLIMIT_NOFILE to the hard limit (no privilege needed) and
// returns the soft limit now in force. Fails only when the limits cannot be
// read or set; the caller may go on with the old limit.
Result<std::uint64_t> raise_open_file_limit();

}  // namespace llmctl
