#include "netcheck/check_result.h"

namespace llmctl::netcheck {

std::string_view check_status_name(CheckStatus status) {
  switch (status) {
    case CheckStatus::kOk: return "ok";
    case CheckStatus::kWarn: return "warn";
    case CheckStatus::kFail: return "fail";
    case CheckStatus::kSkip: return "skip";
  }
  return "?";
}

CheckSummary summarize(const std::vector<CheckResult>& results) {
  CheckSummary s;
  for (const auto& r : results) {
    switch (r.status) {
      case CheckStatus::kOk: ++s.ok; break;
      case CheckStatus::kWarn: ++s.warn; break;
      case CheckStatus::kFail: ++s.fail; break;
      case CheckStatus::kSkip: ++s.skip; break;
    }
  }
  return s;
}

}  // namespace llmctl::netcheck
