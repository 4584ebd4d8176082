// SshSession's failures that need no SSH server: a closed port, a name that
// does not resolve, a peer that accepts TCP but never speaks SSH and one that
// speaks something else. The successful paths and host-key / authentication
// failures run against real sshd in tests/integration/ssh_exec_test.py.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include "runtime/remote/ssh_session.h"

using llmctl::StatusCode;
using llmctl::remote::SshOptions;
using llmctl::remote::SshSession;

namespace {

// A listening socket on 127.0.0.1 with a kernel-chosen port.
struct Listener {
  int fd = -1;
  int port = 0;
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 4) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~Listener() { ::close(fd); }
};

SshOptions local(int port, double timeout_s) {
  SshOptions o;
  o.host = "127.0.0.1";
  o.port = port;
  o.connect_timeout_s = timeout_s;
  o.known_hosts_file = "/nonexistent/known_hosts";
  return o;
}

}  // namespace

TEST_CASE("a closed port is unreachable with the kernel's reason") {
  int port;
  {
    Listener l;  // bound then closed: nobody listens there now
    port = l.port;
  }
  auto s = SshSession::connect(local(port, 2));
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.status().code() == StatusCode::kUnavailable);
  CHECK(s.status().message() ==
        "root@127.0.0.1:" + std::to_string(port) + ": unreachable: 127.0.0.1 port " + std::to_string(port) +
            ": Connection refused");
}

TEST_CASE("a name that does not resolve says so") {
  SshOptions o = local(22, 2);
  o.host = "no-such-host.invalid";
  auto s = SshSession::connect(o);
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.status().message().find("root@no-such-host.invalid:22: cannot resolve host 'no-such-host.invalid'") == 0);
}

TEST_CASE("a peer that never speaks SSH times out within the connect timeout") {
  Listener l;  // the kernel completes the handshake; nobody ever writes a banner
  auto start = std::chrono::steady_clock::now();
  auto s = SshSession::connect(local(l.port, 0.5));
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.status().code() == StatusCode::kDeadlineExceeded);
  CHECK(s.status().message().find("SSH handshake timed out after 0.5 s") != std::string::npos);
  CHECK(took < 5);
}

TEST_CASE("a peer speaking another protocol fails the handshake") {
  Listener l;
  std::thread server([&] {
    int c = ::accept(l.fd, nullptr, nullptr);
    const char reply[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
    (void)!::write(c, reply, sizeof reply - 1);
    ::shutdown(c, SHUT_WR);
    char buf[256];
    while (::read(c, buf, sizeof buf) > 0) {
    }
    ::close(c);
  });
  auto s = SshSession::connect(local(l.port, 3));
  server.join();
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.status().code() == StatusCode::kUnavailable);
  CHECK(s.status().message().find(": SSH handshake failed: ") != std::string::npos);
}

TEST_CASE("an empty host is rejected before any connect") {
  SshOptions o;
  auto s = SshSession::connect(o);
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.status().code() == StatusCode::kInvalidArgument);
}
