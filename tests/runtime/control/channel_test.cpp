// Channel over real loopback sockets, stepping one io_context in the test thread.
#include "runtime/transport/channel.h"

#include <doctest/doctest.h>

#include "runtime/transport/framed_connection.h"
#include "runtime/transport/tls_context.h"

using namespace llmctl;
using namespace llmctl::transport;
using namespace std::chrono_literals;

namespace {

// Runs `io` until `done()` or 5 s of real time (a failing test, not a hang).
template <typename Pred>
bool run_until(asio::io_context& io, Pred done) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.run_for(5ms);
    if (io.stopped()) io.restart();
  }
  return done();
}

struct Pair {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor{io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  std::shared_ptr<Channel> server, client;
  Status server_status, client_status;

  void open(const std::string& server_token, const std::string& client_token, ChannelOptions options = {}) {
    open(server_token, client_token, options, options);
  }
  void open(const std::string& server_token, const std::string& client_token, ChannelOptions options,
            ChannelOptions client_options) {
    bool s_done = false, c_done = false;
    acceptor.async_accept([&](asio::error_code ec, asio::ip::tcp::socket socket) {
      REQUIRE_FALSE(ec);
      Channel::async_accept(std::move(socket), server_token, options, [&](Result<std::shared_ptr<Channel>> r) {
        s_done = true;
        server_status = r.status();
        if (r.is_ok()) server = *r;
      });
    });
    Channel::async_connect(io, "127.0.0.1", acceptor.local_endpoint().port(), client_token, client_options,
                           [&](Result<std::shared_ptr<Channel>> r) {
                             c_done = true;
                             client_status = r.status();
                             if (r.is_ok()) client = *r;
                           });
    REQUIRE(run_until(io, [&] { return s_done && c_done; }));
  }
};

}  // namespace

TEST_CASE("message decoding rejects what is not a v1 envelope") {
  CHECK(decode_message(R"({"v":1,"type":"x","body":{"a":1}})").is_ok());
  CHECK_FALSE(decode_message("not json").is_ok());
  CHECK_FALSE(decode_message(R"([1,2])").is_ok());
  CHECK_FALSE(decode_message(R"({"type":"x"})").is_ok());
  auto other = decode_message(R"({"v":2,"type":"x"})");
  REQUIRE_FALSE(other.is_ok());
  CHECK(other.status().message().find("version 2") != std::string::npos);
  CHECK_FALSE(decode_message(R"({"v":1,"type":7})").is_ok());
}

TEST_CASE("frames are a 4-byte big-endian length then the payload") {
  std::string f = encode_frame("abc");
  REQUIRE(f.size() == 7);
  CHECK(f.substr(0, 4) == std::string("\0\0\0\3", 4));
  CHECK(f.substr(4) == "abc");
}

TEST_CASE("requests are answered by id, pushes flow both ways, errors keep their code") {
  Pair p;
  p.open("secret", "secret");
  REQUIRE(p.client_status.is_ok());
  REQUIRE(p.server_status.is_ok());
  std::vector<std::string> pushes_at_server, pushes_at_client;
  p.server->start(
      [&](const Message& m, std::uint64_t id) {
        if (id == 0) return pushes_at_server.push_back(m.type);
        if (m.type == "echo") return p.server->reply(id, m.body);
        p.server->reply(id, Status::not_found("no such thing"));
      },
      [](const Status&) {});
  p.client->start([&](const Message& m, std::uint64_t) { pushes_at_client.push_back(m.type); }, [](const Status&) {});

  std::vector<Result<nlohmann::json>> replies;
  for (int i = 0; i < 3; ++i) {
    p.client->request("echo", {{"i", i}}, 2s, [&](Result<nlohmann::json> r) { replies.push_back(std::move(r)); });
  }
  p.client->request("missing", {}, 2s, [&](Result<nlohmann::json> r) { replies.push_back(std::move(r)); });
  p.client->push("beat", {});
  p.server->push("launch", {});
  REQUIRE(run_until(p.io, [&] { return replies.size() == 4 && !pushes_at_client.empty() && !pushes_at_server.empty(); }));
  for (int i = 0; i < 3; ++i) CHECK((*replies[static_cast<std::size_t>(i)])["i"] == i);
  REQUIRE_FALSE(replies[3].is_ok());
  CHECK(replies[3].status().code() == StatusCode::kNotFound);
  CHECK(pushes_at_server == std::vector<std::string>{"beat"});
  CHECK(pushes_at_client == std::vector<std::string>{"launch"});
}

TEST_CASE("a wrong token is refused on both sides") {
  Pair p;
  p.open("right", "wrong");
  CHECK(p.client_status.code() == StatusCode::kPermissionDenied);
  CHECK(p.server_status.code() == StatusCode::kPermissionDenied);
  CHECK(p.server_status.message().find("127.0.0.1") != std::string::npos);
}

TEST_CASE("an unanswered request times out; closing fails what is pending") {
  Pair p;
  p.open("t", "t");
  p.server->start([](const Message&, std::uint64_t) {}, [](const Status&) {});
  Status closed_why;
  bool closed = false;
  p.client->start([](const Message&, std::uint64_t) {}, [&](const Status& s) {
    closed = true;
    closed_why = s;
  });
  std::optional<Result<nlohmann::json>> quick, slow;
  p.client->request("x", {}, 20ms, [&](Result<nlohmann::json> r) { quick = std::move(r); });
  p.client->request("y", {}, 10s, [&](Result<nlohmann::json> r) { slow = std::move(r); });
  REQUIRE(run_until(p.io, [&] { return quick.has_value(); }));
  CHECK(quick->status().code() == StatusCode::kDeadlineExceeded);
  p.server->close(Status::unavailable("bye"));
  REQUIRE(run_until(p.io, [&] { return slow.has_value() && closed; }));
  CHECK(slow->status().code() == StatusCode::kUnavailable);
}

TEST_CASE("an oversized frame closes only that channel") {
  Pair p;
  ChannelOptions small;
  small.max_frame_bytes = 256;
  p.open("t", "t", small);
  bool server_closed = false;
  Status why;
  p.server->start([](const Message&, std::uint64_t) {}, [&](const Status& s) {
    server_closed = true;
    why = s;
  });
  p.client->start([](const Message&, std::uint64_t) {}, [](const Status&) {});
  p.client->push("big", {{"blob", std::string(1000, 'x')}});
  REQUIRE(run_until(p.io, [&] { return server_closed; }));
  CHECK(why.code() == StatusCode::kInvalidArgument);
  CHECK(why.message().find("exceeds") != std::string::npos);
}

TEST_CASE("a silent peer is closed after the idle timeout, not while a reply is owed") {
  Pair p;
  ChannelOptions idle;
  idle.idle_timeout_ms = 100;
  p.open("t", "t", idle);
  bool closed = false;
  std::uint64_t owed = 0;
  p.server->start([&](const Message&, std::uint64_t id) { owed = id; }, [&](const Status&) { closed = true; });
  p.client->start([](const Message&, std::uint64_t) {}, [](const Status&) {});
  std::optional<Result<nlohmann::json>> reply;
  p.client->request("long.wait", {}, 5s, [&](Result<nlohmann::json> r) { reply = std::move(r); });
  auto until = std::chrono::steady_clock::now() + 400ms;
  run_until(p.io, [&] { return std::chrono::steady_clock::now() > until; });
  CHECK_FALSE(closed);  // a reply is owed: the peer is waiting, not dead
  p.server->reply(owed, nlohmann::json{{"ok", true}});
  REQUIRE(run_until(p.io, [&] { return reply.has_value() && closed; }));
}

namespace {

// tls_test_cert.pem / tls_test_key.pem (the head) and tls_other_cert.pem (a
// stranger), self-signed, made once with
//   openssl req -x509 -newkey rsa:2048 -nodes -days 36500 -subj /CN=llmctl-test-head
//     -keyout tls_test_key.pem -out tls_test_cert.pem     (one command line)
// (and -subj /CN=llmctl-other for the other one, its key thrown away).
std::string fixture(const char* name) { return std::string(LLMCTL_SOURCE_DIR) + "/tests/runtime/control/" + name; }

ChannelOptions tls_server_options() {
  ChannelOptions o;
  auto ctx = make_server_tls_context(fixture("tls_test_cert.pem"), fixture("tls_test_key.pem"));
  REQUIRE(ctx.is_ok());
  o.tls = *ctx;
  return o;
}

ChannelOptions tls_client_options(const char* ca) {
  ChannelOptions o;
  auto ctx = make_client_tls_context(fixture(ca));
  REQUIRE(ctx.is_ok());
  o.tls = *ctx;
  return o;
}

}  // namespace

TEST_CASE("TLS: the token handshake and requests run inside TLS") {
  Pair p;
  p.open("tok", "tok", tls_server_options(), tls_client_options("tls_test_cert.pem"));
  REQUIRE(p.server_status.is_ok());
  REQUIRE(p.client_status.is_ok());
  p.server->start([&](const Message& m, std::uint64_t id) { p.server->reply(id, nlohmann::json{{"got", m.body}}); },
                  [](const Status&) {});
  p.client->start([](const Message&, std::uint64_t) {}, [](const Status&) {});
  std::optional<Result<nlohmann::json>> reply;
  p.client->request("echo", {{"x", 1}}, 2s, [&](Result<nlohmann::json> r) { reply = std::move(r); });
  REQUIRE(run_until(p.io, [&] { return reply.has_value(); }));
  REQUIRE(reply->is_ok());
  CHECK((**reply)["got"]["x"] == 1);
}

TEST_CASE("TLS: a wrong token is still refused inside TLS") {
  Pair p;
  p.open("tok", "other", tls_server_options(), tls_client_options("tls_test_cert.pem"));
  CHECK(p.server_status.code() == StatusCode::kPermissionDenied);
  CHECK(p.client_status.code() == StatusCode::kPermissionDenied);
}

TEST_CASE("TLS: a plain client is told the head requires TLS") {
  Pair p;
  p.open("tok", "tok", tls_server_options(), ChannelOptions{});
  CHECK(p.server_status.code() == StatusCode::kPermissionDenied);
  CHECK(p.server_status.message().find("did not start TLS") != std::string::npos);
  CHECK(p.client_status.code() == StatusCode::kPermissionDenied);
  CHECK(p.client_status.message().find("requires TLS") != std::string::npos);
}

TEST_CASE("TLS: a head whose certificate --tls-ca does not trust is refused") {
  Pair p;
  p.open("tok", "tok", tls_server_options(), tls_client_options("tls_other_cert.pem"));
  CHECK_FALSE(p.client_status.is_ok());
  CHECK(p.client_status.message().find("TLS handshake") != std::string::npos);
  CHECK_FALSE(p.server_status.is_ok());
}

TEST_CASE("TLS: missing or mismatched certificate files are reported, naming the flag") {
  auto none = make_server_tls_context(fixture("nope.pem"), fixture("tls_test_key.pem"));
  REQUIRE_FALSE(none.is_ok());
  CHECK(none.status().message().find("--tls-cert") != std::string::npos);
  auto mismatch = make_server_tls_context(fixture("tls_other_cert.pem"), fixture("tls_test_key.pem"));
  REQUIRE_FALSE(mismatch.is_ok());
  CHECK(mismatch.status().message().find("--tls-key") != std::string::npos);  // OpenSSL: "key values mismatch"
  CHECK_FALSE(make_client_tls_context(fixture("nope.pem")).is_ok());
}
