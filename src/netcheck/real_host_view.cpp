// RealHostView: the probes' window on the real machine (POSIX + Linux /proc).
#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/timex.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "netcheck/host_view.h"

namespace llmctl::netcheck {
namespace {

// Closes a file descriptor on scope exit.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() { if (fd_ >= 0) ::close(fd_); }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string errno_text(int err) { return std::strerror(err); }

int prefix_from_mask(const sockaddr* mask) {
  if (mask == nullptr) return 0;
  int bits = 0;
  if (mask->sa_family == AF_INET) {
    std::uint32_t m = ntohl(reinterpret_cast<const sockaddr_in*>(mask)->sin_addr.s_addr);
    while (m & 0x80000000u) { ++bits; m <<= 1; }
  } else if (mask->sa_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(mask)->sin6_addr.s6_addr;
    for (int i = 0; i < 16; ++i) {
      std::uint8_t b = a[i];
      while (b & 0x80) { ++bits; b = static_cast<std::uint8_t>(b << 1); }
      if (a[i] != 0xff) break;
    }
  }
  return bits;
}

std::string sockaddr_text(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof(buf));
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof(buf));
  }
  return buf;
}

int interface_mtu(const std::string& name) {
  FdCloser fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return 0;
  ifreq req{};
  std::strncpy(req.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (::ioctl(fd.get(), SIOCGIFMTU, &req) != 0) return 0;
  return req.ifr_mtu;
}

}  // namespace

bool NetInterface::has_ipv4() const {
  return std::any_of(addresses.begin(), addresses.end(), [](const InterfaceAddress& a) { return !a.ipv6; });
}

bool is_loopback_address(const std::string& address) {
  return address.rfind("127.", 0) == 0 || address == "::1";
}

std::string RealHostView::hostname() const {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "";
  return buf;
}

Result<std::vector<std::string>> RealHostView::resolve(const std::string& name) const {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &res);
  if (rc != 0) return Status::not_found(fmt::format("{} does not resolve: {}", name, gai_strerror(rc)));
  std::vector<std::string> v4, v6;
  for (addrinfo* p = res; p != nullptr; p = p->ai_next) {
    std::string a = sockaddr_text(p->ai_addr);
    auto& list = p->ai_family == AF_INET ? v4 : v6;
    if (!a.empty() && std::find(list.begin(), list.end(), a) == list.end()) list.push_back(a);
  }
  ::freeaddrinfo(res);
  v4.insert(v4.end(), v6.begin(), v6.end());
  return v4;
}

std::vector<NetInterface> RealHostView::interfaces() const {
  std::vector<NetInterface> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  std::map<std::string, std::size_t> index;
  for (ifaddrs* p = list; p != nullptr; p = p->ifa_next) {
    std::string name = p->ifa_name;
    auto it = index.find(name);
    if (it == index.end()) {
      NetInterface iface;
      iface.name = name;
      iface.up = (p->ifa_flags & IFF_UP) && (p->ifa_flags & IFF_RUNNING);
      iface.loopback = (p->ifa_flags & IFF_LOOPBACK) != 0;
      iface.mtu = interface_mtu(name);
      it = index.emplace(name, out.size()).first;
      out.push_back(std::move(iface));
    }
    if (p->ifa_addr == nullptr) continue;
    int family = p->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    InterfaceAddress a;
    a.address = sockaddr_text(p->ifa_addr);
    a.prefix_length = prefix_from_mask(p->ifa_netmask);
    a.ipv6 = family == AF_INET6;
    out[it->second].addresses.push_back(a);
  }
  ::freeifaddrs(list);
  return out;
}

Status RealHostView::try_bind_tcp(const std::string& address, int port) const {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1) {
    return Status::invalid_argument(fmt::format("{} is not an IPv4 address", address));
  }
  FdCloser fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Status::io_error(fmt::format("socket(): {}", errno_text(errno)));
  int one = 1;
  // SO_REUSEADDR: a port in TIME_WAIT is usable by a server, so it is not "taken".
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    if (err == EADDRINUSE) return Status::already_exists(errno_text(err));
    if (err == EACCES) return Status::permission_denied(errno_text(err));
    return Status::io_error(errno_text(err));
  }
  return Status::ok();
}

Result<RouteInfo> RealHostView::route_to(const std::string& peer_address) const {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  if (peer_address.find(':') != std::string::npos) {
    family = AF_INET6;
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(9);
    if (::inet_pton(AF_INET6, peer_address.c_str(), &a6->sin6_addr) != 1) {
      return Status::invalid_argument(fmt::format("{} is not an address", peer_address));
    }
    len = sizeof(sockaddr_in6);
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(9);
    if (::inet_pton(AF_INET, peer_address.c_str(), &a4->sin_addr) != 1) {
      return Status::invalid_argument(fmt::format("{} is not an address", peer_address));
    }
    len = sizeof(sockaddr_in);
  }
  // Connecting a UDP socket only asks the kernel for a route; nothing is sent.
  FdCloser fd(::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Status::io_error(fmt::format("socket(): {}", errno_text(errno)));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    return Status::unavailable(fmt::format("no route to {}: {}", peer_address, errno_text(errno)));
  }
  sockaddr_storage local{};
  socklen_t local_len = sizeof(local);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &local_len) != 0) {
    return Status::io_error(fmt::format("getsockname(): {}", errno_text(errno)));
  }
  RouteInfo route;
  route.source_address = sockaddr_text(reinterpret_cast<sockaddr*>(&local));
  for (const auto& iface : interfaces()) {
    for (const auto& a : iface.addresses) {
      if (a.address == route.source_address) route.interface_name = iface.name;
    }
  }
  return route;
}

Result<std::string> RealHostView::read_file(const std::string& path) const {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found(fmt::format("{}: {}", path, errno_text(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> RealHostView::list_dir(const std::string& path) const {
  std::vector<std::string> out;
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return out;
  while (dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(std::move(name));
  }
  ::closedir(dir);
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::string> RealHostView::read_link(const std::string& path) const {
  char buf[512];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf) - 1);
  if (n < 0) return Status::not_found(fmt::format("{}: {}", path, errno_text(errno)));
  return std::string(buf, static_cast<std::size_t>(n));
}

Result<DiskSpace> RealHostView::disk_space(const std::string& path) const {
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) return Status::not_found(fmt::format("{}: {}", path, errno_text(errno)));
  DiskSpace d;
  d.total_bytes = static_cast<std::uint64_t>(st.f_blocks) * st.f_frsize;
  d.free_bytes = static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
  return d;
}

std::optional<std::string> RealHostView::env(const std::string& name) const {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

FileLimit RealHostView::open_file_limit() const {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  return {static_cast<std::uint64_t>(rl.rlim_cur), static_cast<std::uint64_t>(rl.rlim_max)};
}

bool RealHostView::clock_synchronized() const {
  timex tx{};
  int state = ::adjtimex(&tx);
  return state != TIME_ERROR && (tx.status & STA_UNSYNC) == 0;
}

GpuInventory RealHostView::gpus() const { return probe_gpus(); }

std::string RealHostView::nccl_version() const {
  void* lib = ::dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return "";
  using GetVersion = int (*)(int*);
  auto fn = reinterpret_cast<GetVersion>(::dlsym(lib, "ncclGetVersion"));
  std::string out;
  int v = 0;
  if (fn != nullptr && fn(&v) == 0) {
    // NCCL >= 2.9 encodes major*10000 + minor*100 + patch.
    out = v >= 10000 ? fmt::format("{}.{}.{}", v / 10000, (v % 10000) / 100, v % 100)
                     : fmt::format("{}.{}.{}", v / 1000, (v % 1000) / 100, v % 100);
  }
  ::dlclose(lib);
  return out;
}

}  // namespace llmctl::netcheck
