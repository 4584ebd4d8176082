#include "netcheck/report/report_table.h"

#include <algorithm>

#include <fmt/format.h>

namespace llmctl::netcheck {

std::string render_table(const std::vector<CheckResult>& results, bool color) {
  std::vector<std::string> nodes;
  std::size_t id_width = 0;
  for (const auto& r : results) {
    if (std::find(nodes.begin(), nodes.end(), r.node) == nodes.end()) nodes.push_back(r.node);
    id_width = std::max(id_width, r.id.size());
  }
  std::string out;
  for (const auto& node : nodes) {
    out += fmt::format("{}\n", node.empty() ? "(local)" : node);
    for (const auto& r : results) {
      if (r.node != node) continue;
      std::string_view name = check_status_name(r.status);
      std::string status = fmt::format("{:<4}", name);
      if (color) {
        const char* code = r.status == CheckStatus::kOk     ? "32"
                           : r.status == CheckStatus::kWarn ? "33"
                           : r.status == CheckStatus::kFail ? "31"
                                                            : "90";
        status = fmt::format("\x1b[{}m{}\x1b[0m", code, status);
      }
      out += fmt::format("  {}  {:<{}}  {}\n", status, r.id, id_width, r.message);
      if (!r.fix.empty() && r.status != CheckStatus::kOk) {
        out += fmt::format("        {:<{}}  fix: {}\n", "", id_width, r.fix);
      }
    }
  }
  CheckSummary s = summarize(results);
  out += fmt::format("\n{} ok, {} warn, {} fail, {} skip\n", s.ok, s.warn, s.fail, s.skip);
  return out;
}

}  // namespace llmctl::netcheck
