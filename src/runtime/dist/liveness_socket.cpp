#include "runtime/dist/liveness_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

namespace llmctl::dist {
namespace {

// Fills `storage` from a textual IPv4 or IPv6 address and port.
bool make_sockaddr(const std::string& address, std::uint16_t port, sockaddr_storage& storage, socklen_t& len) {
  std::memset(&storage, 0, sizeof(storage));
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  if (::inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (::inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

}  // namespace

Result<LivenessSocket> LivenessSocket::open(const std::string& address) {
  sockaddr_storage addr;
  socklen_t len = 0;
  if (!make_sockaddr(address, 0, addr, len)) {
    return Status::invalid_argument(fmt::format("liveness socket: \"{}\" is not an IP address", address));
  }
  int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::io_error(fmt::format("liveness socket: socket: {}", std::strerror(errno)));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, SOMAXCONN) != 0) {
    int err = errno;
    ::close(fd);
    return Status::io_error(fmt::format("liveness socket: binding {}: {}", address, std::strerror(err)));
  }
  sockaddr_storage bound;
  socklen_t bound_len = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  LivenessSocket s;
  s.fd_ = fd;
  s.port_ = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                             : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  return s;
}

LivenessSocket::LivenessSocket(LivenessSocket&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), port_(std::exchange(other.port_, 0)) {}

LivenessSocket& LivenessSocket::operator=(LivenessSocket&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    port_ = std::exchange(other.port_, 0);
  }
  return *this;
}

LivenessSocket::~LivenessSocket() {
  if (fd_ >= 0) ::close(fd_);
}

PeerState probe_peer(const std::string& address, std::uint16_t port, std::chrono::milliseconds timeout) {
  sockaddr_storage addr;
  socklen_t len = 0;
  if (port == 0 || !make_sockaddr(address, port, addr, len)) return PeerState::kSilent;
  int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return PeerState::kSilent;
  PeerState state = PeerState::kSilent;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0) {
    state = PeerState::kAlive;
  } else if (errno == ECONNREFUSED) {
    state = PeerState::kGone;
  } else if (errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
      int err = 0;
      socklen_t err_len = sizeof(err);
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len);
      if (err == 0) state = PeerState::kAlive;
      if (err == ECONNREFUSED) state = PeerState::kGone;
    }
  }
  ::close(fd);
  return state;
}

}  // namespace llmctl::dist
