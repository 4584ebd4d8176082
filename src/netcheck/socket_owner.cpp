#include "netcheck/socket_owner.h"

#include <cstdlib>
#include <sstream>

#include <fmt/format.h>

namespace llmctl::netcheck {

std::multimap<int, std::string> parse_proc_net_tcp_listeners(std::string_view text) {
  // Columns: sl local_address rem_address st tx:rx tr:tm retrnsmt uid timeout inode ...
  std::multimap<int, std::string> out;
  std::istringstream in{std::string(text)};
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream cols(line);
    std::string sl, local, remote, state, txrx, trtm, retr, uid, timeout, inode;
    if (!(cols >> sl >> local >> remote >> state >> txrx >> trtm >> retr >> uid >> timeout >> inode)) continue;
    if (state != "0A") continue;  // TCP_LISTEN
    auto colon = local.rfind(':');
    if (colon == std::string::npos) continue;
    int port = static_cast<int>(std::strtol(local.c_str() + colon + 1, nullptr, 16));
    out.emplace(port, inode);
  }
  return out;
}

void SocketOwners::scan() {
  scanned_ = true;
  for (const char* path : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    auto text = host_.read_file(path);
    if (!text.is_ok()) continue;
    auto found = parse_proc_net_tcp_listeners(*text);
    port_inodes_.insert(found.begin(), found.end());
  }
  if (port_inodes_.empty()) return;
  std::map<std::string, bool> wanted;
  for (const auto& [port, inode] : port_inodes_) wanted["socket:[" + inode + "]"] = true;
  for (const auto& entry : host_.list_dir("/proc")) {
    if (entry.empty() || entry.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string fd_dir = "/proc/" + entry + "/fd";
    for (const auto& fd : host_.list_dir(fd_dir)) {
      auto target = host_.read_link(fd_dir + "/" + fd);
      if (!target.is_ok() || !wanted.count(*target)) continue;
      PortOwner owner;
      owner.pid = std::atoi(entry.c_str());
      auto comm = host_.read_file("/proc/" + entry + "/comm");
      if (comm.is_ok()) {
        owner.command = *comm;
        while (!owner.command.empty() && (owner.command.back() == '\n' || owner.command.back() == ' ')) {
          owner.command.pop_back();
        }
      }
      std::string inode = target->substr(8, target->size() - 9);
      inode_owner_.emplace(inode, owner);
    }
  }
}

std::vector<PortOwner> SocketOwners::owners_of(int port) {
  if (!scanned_) scan();
  std::vector<PortOwner> out;
  auto [begin, end] = port_inodes_.equal_range(port);
  for (auto it = begin; it != end; ++it) {
    auto owner = inode_owner_.find(it->second);
    if (owner == inode_owner_.end()) continue;
    bool seen = false;
    for (const auto& o : out) seen = seen || o.pid == owner->second.pid;
    if (!seen) out.push_back(owner->second);
  }
  return out;
}

std::string describe_owners(const std::vector<PortOwner>& owners) {
  if (owners.empty()) return "another process (not visible; run as root to name it)";
  std::string out;
  for (const auto& o : owners) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{} (pid {})", o.command.empty() ? "?" : o.command, o.pid);
  }
  return out;
}

}  // namespace llmctl::netcheck
