#include "netcheck/hosts_file.h"

#include <algorithm>
#include <cctype>
#include <sstream>

namespace llmctl::netcheck {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

HostsFile HostsFile::parse(std::string_view text) {
  HostsFile file;
  std::istringstream in{std::string(text)};
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    HostsEntry entry;
    entry.line = number;
    if (!(words >> entry.address)) continue;
    for (std::string name; words >> name;) entry.names.push_back(name);
    if (!entry.names.empty()) file.entries_.push_back(std::move(entry));
  }
  return file;
}

std::vector<const HostsEntry*> HostsFile::lookup(std::string_view name) const {
  std::vector<const HostsEntry*> out;
  for (const auto& e : entries_) {
    if (std::any_of(e.names.begin(), e.names.end(), [&](const std::string& n) { return iequals(n, name); })) {
      out.push_back(&e);
    }
  }
  return out;
}

}  // namespace llmctl::netcheck
