#include "netcheck/report/report_json.h"

#include <nlohmann/json.hpp>

namespace llmctl::netcheck {

std::string render_json(const std::vector<CheckResult>& results) {
  nlohmann::json checks = nlohmann::json::array();
  for (const auto& r : results) {
    checks.push_back({{"node", r.node},
                      {"id", r.id},
                      {"status", std::string(check_status_name(r.status))},
                      {"message", r.message},
                      {"fix", r.fix}});
  }
  CheckSummary s = summarize(results);
  nlohmann::json doc = {{"checks", checks},
                        {"summary", {{"ok", s.ok}, {"warn", s.warn}, {"fail", s.fail}, {"skip", s.skip}}}};
  // Replace invalid UTF-8 (from /proc or hostnames) instead of throwing.
  return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace llmctl::netcheck
