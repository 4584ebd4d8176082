// Where a node keeps its state: logs, tokens, pid files, the head's log.
#pragma once

#include <string>

namespace llmctl {

// /var/lib/llmctl when running as root, else ~/.llmctl. LLMCTL_STATE_DIR
// overrides it (the --state-dir flag sets that variable for child processes).
std::string default_state_dir();

// Expands a leading "~/" with $HOME.
std::string expand_user(const std::string& path);

}  // namespace llmctl
