// The transport over real loopback sockets: handshake, refusal of a wrong token,
// oversized frames, garbage bytes and half-open connections; one bad connection
// never disturbs the others.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include <asio.hpp>

#include "runtime/transport/client.h"
#include "runtime/transport/framed_connection.h"
#include "runtime/transport/handshake.h"
#include "runtime/transport/message.h"
#include "runtime/transport/server.h"

using namespace llmctl;
using namespace llmctl::transport;
using namespace std::chrono_literals;

namespace {

// A server on 127.0.0.1:<free port> with an echo handler, run on its own thread.
class TestServer {
 public:
  explicit TestServer(std::string token, ServerOptions options = {}) : server_(io_, std::move(token), options) {
    server_.on("echo", [](const Message& m, const std::string& peer) -> Result<nlohmann::json> {
      return nlohmann::json{{"echo", m.body}, {"peer", peer}};
    });
    server_.on("fail", [](const Message&, const std::string&) -> Result<nlohmann::json> {
      return Status::not_found("nothing here");
    });
    auto port = server_.listen("127.0.0.1", 0);
    REQUIRE(port.is_ok());
    port_ = *port;
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TestServer() {
    server_.stop();
    work_.reset();
    io_.stop();
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  Server& server() { return server_; }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  Server server_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

// A raw blocking socket for sending bytes the protocol does not expect.
asio::ip::tcp::socket raw_connect(asio::io_context& io, std::uint16_t port) {
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  return s;
}

// True when the peer closed the socket within `timeout` (read returns EOF/reset).
bool closed_by_peer(asio::ip::tcp::socket& s, std::chrono::milliseconds timeout) {
  s.non_blocking(true);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[256];
  while (std::chrono::steady_clock::now() < deadline) {
    asio::error_code ec;
    s.read_some(asio::buffer(buf), ec);
    if (ec == asio::error::eof || ec == asio::error::connection_reset) return true;
    if (ec && ec != asio::error::would_block) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

void expect_server_still_serves(std::uint16_t port, const std::string& token) {
  auto client = Client::connect("127.0.0.1", port, token, 2000ms);
  REQUIRE(client.is_ok());
  auto reply = (*client)->call("echo", {{"x", 1}}, 2000ms);
  REQUIRE(reply.is_ok());
  CHECK((*reply)["echo"]["x"] == 1);
}

}  // namespace

TEST_CASE("frames: big-endian length prefix") {
  std::string f = encode_frame("abc");
  REQUIRE(f.size() == 7);
  CHECK(f[0] == 0);
  CHECK(f[3] == 3);
  CHECK(f.substr(4) == "abc");
}

TEST_CASE("messages: version and fields are checked") {
  auto m = decode_message(encode_message(Message{"t", {{"a", 1}}}));
  REQUIRE(m.is_ok());
  CHECK(m->type == "t");
  CHECK(m->body["a"] == 1);
  CHECK_FALSE(decode_message("{\"v\":2,\"type\":\"t\"}").is_ok());
  CHECK(decode_message("{\"v\":2,\"type\":\"t\"}").status().message().find("version 2") != std::string::npos);
  CHECK_FALSE(decode_message("{\"v\":1}").is_ok());
  CHECK_FALSE(decode_message("not json").is_ok());
}

TEST_CASE("HMAC-SHA256 matches RFC 4231 test case 2") {
  CHECK(hmac_sha256_hex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(random_hex(32).size() == 64);
  CHECK(random_hex(32) != random_hex(32));
}

TEST_CASE("handshake with the right token, then request/reply and error replies") {
  TestServer server("s3cret");
  auto client = Client::connect("127.0.0.1", server.port(), "s3cret", 2000ms);
  REQUIRE_MESSAGE(client.is_ok(), client.status().to_string());
  auto reply = (*client)->call("echo", {{"hello", "world"}}, 2000ms);
  REQUIRE(reply.is_ok());
  CHECK((*reply)["echo"]["hello"] == "world");
  CHECK((*reply)["peer"].get<std::string>().rfind("127.0.0.1:", 0) == 0);
  auto failed = (*client)->call("fail", {}, 2000ms);
  REQUIRE_FALSE(failed.is_ok());
  CHECK(failed.status().message().find("nothing here") != std::string::npos);
  auto unknown = (*client)->call("nope", {}, 2000ms);
  REQUIRE_FALSE(unknown.is_ok());
  CHECK(unknown.status().message().find("unknown request type") != std::string::npos);
  // The connection survives error replies.
  CHECK((*client)->call("echo", {}, 2000ms).is_ok());
}

TEST_CASE("a wrong token is refused on both sides") {
  TestServer server("right");
  auto client = Client::connect("127.0.0.1", server.port(), "wrong", 2000ms);
  REQUIRE_FALSE(client.is_ok());
  CHECK(client.status().code() == StatusCode::kPermissionDenied);
  // The server saw and counted it (logged with the peer address).
  for (int i = 0; i < 100 && server.server().num_auth_failures() == 0; ++i) std::this_thread::sleep_for(10ms);
  CHECK(server.server().num_auth_failures() == 1);
  expect_server_still_serves(server.port(), "right");
}

TEST_CASE("a server that does not know the token is detected by the client") {
  // An impostor: answers auth.hello with a made-up proof.
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  std::uint16_t port = acceptor.local_endpoint().port();
  std::thread impostor([&] {
    auto s = acceptor.accept();
    auto conn = std::make_shared<FramedConnection>(std::move(s));
    asio::io_context& cio = io;
    conn->async_read([conn](Status, Message) {
      conn->async_write(Message{"auth.challenge", {{"nonce", random_hex(32)}, {"proof", random_hex(32)}}},
                        [](Status) {});
    });
    cio.run();
  });
  auto client = Client::connect("127.0.0.1", port, "tok", 2000ms);
  REQUIRE_FALSE(client.is_ok());
  CHECK(client.status().code() == StatusCode::kPermissionDenied);
  CHECK(client.status().message().find("proof") != std::string::npos);
  impostor.join();
}

TEST_CASE("an oversized frame closes only that connection") {
  ServerOptions options;
  options.max_frame_bytes = 1024;
  TestServer server("tok", options);
  auto good = Client::connect("127.0.0.1", server.port(), "tok", 2000ms);
  REQUIRE(good.is_ok());
  asio::io_context io;
  auto s = raw_connect(io, server.port());
  std::string header = {'\x00', '\x10', '\x00', '\x00'};  // claims 1 MiB
  asio::write(s, asio::buffer(header));
  CHECK(closed_by_peer(s, 2000ms));
  // The other connection, already authenticated, still works, and new ones too.
  CHECK((*good)->call("echo", {}, 2000ms).is_ok());
  expect_server_still_serves(server.port(), "tok");
  // A client refuses an oversized reply the same way.
  auto small = Client::connect("127.0.0.1", server.port(), "tok", 2000ms, 64);
  REQUIRE(small.is_ok() == false);  // the 150-byte challenge already exceeds 64
}

TEST_CASE("garbage bytes close only that connection") {
  TestServer server("tok");
  asio::io_context io;
  auto s = raw_connect(io, server.port());
  std::string garbage = encode_frame("\x01\x02 this is not json {{{");
  asio::write(s, asio::buffer(garbage));
  CHECK(closed_by_peer(s, 2000ms));
  auto s2 = raw_connect(io, server.port());
  asio::write(s2, asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));  // "GET " = a 1.2 GB frame
  CHECK(closed_by_peer(s2, 2000ms));
  expect_server_still_serves(server.port(), "tok");
}

TEST_CASE("a half-open connection is dropped after the handshake timeout, others are served meanwhile") {
  ServerOptions options;
  options.handshake_timeout_ms = 300;
  TestServer server("tok", options);
  asio::io_context io;
  auto silent = raw_connect(io, server.port());   // connects, never speaks
  auto partial = raw_connect(io, server.port());  // half a frame header, then silence
  asio::write(partial, asio::buffer(std::string("\x00\x00", 2)));
  expect_server_still_serves(server.port(), "tok");
  CHECK(closed_by_peer(silent, 3000ms));
  CHECK(closed_by_peer(partial, 3000ms));
}

TEST_CASE("client deadlines: connecting to a closed port and a silent server") {
  asio::io_context io;
  std::uint16_t closed_port = 0;
  {
    asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    closed_port = a.local_endpoint().port();
  }
  auto refused = Client::connect("127.0.0.1", closed_port, "tok", 1000ms);
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.status().code() == StatusCode::kUnavailable);

  asio::ip::tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});  // listens, never accepts
  auto start = std::chrono::steady_clock::now();
  auto timed_out = Client::connect("127.0.0.1", silent.local_endpoint().port(), "tok", 300ms);
  REQUIRE_FALSE(timed_out.is_ok());
  CHECK(timed_out.status().code() == StatusCode::kDeadlineExceeded);
  CHECK(std::chrono::steady_clock::now() - start < 2s);
}
