// The machine report of `llmctl doctor --json`:
//   {"checks":[{"node","id","status","message","fix"}],"summary":{"ok":N,"warn":N,"fail":N,"skip":N}}
#pragma once

#include <string>
#include <vector>

#include "netcheck/check_result.h"

namespace llmctl::netcheck {

std::string render_json(const std::vector<CheckResult>& results);

}  // namespace llmctl::netcheck
