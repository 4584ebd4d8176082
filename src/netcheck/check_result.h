// One finding of `llmctl doctor`: a check's outcome on one node, with the fix.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace llmctl::netcheck {

enum class CheckStatus { kOk, kWarn, kFail, kSkip };

std::string_view check_status_name(CheckStatus status);  // "ok", "warn", "fail", "skip"

struct CheckResult {
  std::string node;      // node name the check ran on or about
  std::string id;        // stable id, e.g. "ports.head", "hostname.loopback"
  CheckStatus status = CheckStatus::kOk;
  std::string message;   // the finding, one line
  std::string fix;       // a command or config line; empty when nothing to do
};

struct CheckSummary {
  int ok = 0, warn = 0, fail = 0, skip = 0;
};

CheckSummary summarize(const std::vector<CheckResult>& results);

}  // namespace llmctl::netcheck
