// The human report: results grouped by node (in first-seen order), one line per
// check with status, id and finding, the fix indented under it, then a summary.
#pragma once

#include <string>
#include <vector>

#include "netcheck/check_result.h"

namespace llmctl::netcheck {

// `color` adds ANSI colours to the status column (for terminals).
std::string render_table(const std::vector<CheckResult>& results, bool color);

}  // namespace llmctl::netcheck
