// /etc/hosts, parsed: which names map to which addresses, and on which lines.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace llmctl::netcheck {

struct HostsEntry {
  int line = 0;                 // 1-based line number
  std::string address;
  std::vector<std::string> names;  // canonical name first, then aliases
};

class HostsFile {
 public:
  // Never fails: malformed lines (no name after the address) are skipped.
  static HostsFile parse(std::string_view text);

  const std::vector<HostsEntry>& entries() const { return entries_; }
  // Addresses for `name` (case-insensitive), in file order, with their lines.
  std::vector<const HostsEntry*> lookup(std::string_view name) const;

 private:
  std::vector<HostsEntry> entries_;
};

}  // namespace llmctl::netcheck
