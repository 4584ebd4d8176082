#include "netcheck/interface_selector.h"

namespace llmctl::netcheck {
namespace {

std::vector<std::string> split_commas(std::string_view text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string item(text.substr(start, comma - start));
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
    start = comma + 1;
  }
  return out;
}

bool usable(const NetInterface& iface) { return iface.up && iface.has_ipv4(); }

}  // namespace

InterfaceSelector InterfaceSelector::parse_nccl(std::string_view spec) {
  InterfaceSelector s;
  if (!spec.empty() && spec.front() == '^') {
    s.exclude_ = true;
    spec.remove_prefix(1);
  }
  if (!spec.empty() && spec.front() == '=') {
    s.exact_ = true;
    spec.remove_prefix(1);
  }
  s.names_ = split_commas(spec);
  return s;
}

InterfaceSelector InterfaceSelector::parse_exact_list(std::string_view spec) {
  InterfaceSelector s;
  s.exact_ = true;
  s.names_ = split_commas(spec);
  return s;
}

bool InterfaceSelector::matches(std::string_view interface_name) const {
  bool any = false;
  for (const auto& n : names_) {
    any = any || (exact_ ? interface_name == n : interface_name.substr(0, n.size()) == n);
  }
  return exclude_ ? !any : any;
}

std::vector<const NetInterface*> InterfaceSelector::select(const std::vector<NetInterface>& interfaces) const {
  std::vector<const NetInterface*> out;
  for (const auto& iface : interfaces) {
    if (usable(iface) && matches(iface.name)) out.push_back(&iface);
  }
  return out;
}

const NetInterface* nccl_default_interface(const std::vector<NetInterface>& interfaces) {
  for (const char* spec : {"ib", "^docker,lo", "docker", "lo"}) {
    auto found = InterfaceSelector::parse_nccl(spec).select(interfaces);
    if (!found.empty()) return found.front();
  }
  return nullptr;
}

}  // namespace llmctl::netcheck
