// The process's open-file limit, as far as the server needs it: every client
// connection holds a descriptor, and distributions start processes with a soft
// RLIMIT_NOFILE of 1024, well below "thousands of connections".
#pragma once

#include <cstdint>

#include "common/status.h"

namespace llmctl::server {

// Raises the soft RLIMIT_NOFILE to the hard limit (no privilege needed) and
// returns the soft limit now in force. Fails only when the limits cannot be
// read or set; the caller may go on with the old limit.
Result<std::uint64_t> raise_open_file_limit();

}  // namespace llmctl::server
