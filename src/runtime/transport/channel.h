// Channel: a long-lived authenticated connection carrying requests matched to
// replies by id, plus one-way pushes in both directions (the control plane's
// one connection per agent: heartbeats up, "launch bundle" down, replies both
// ways). Built on FramedConnection and the token handshake (handshake.h).
//
// Wire form, inside the Message envelope (message.h):
//   request  {type: T,       body: {"id": n, "data": D}}   n > 0, reply expected
//   push     {type: T,       body: {"data": D}}            no reply
//   reply    {type: "reply", body: {"id": n, "data": R}}
//   error    {type: "error", body: {"id": n, "message": M, "code": C}}
//
// Failure behaviour: a read error, a malformed or oversized frame, a handshake
// not finished within handshake_timeout_ms, or no complete frame for
// idle_timeout_ms while no reply is owed closes this channel only; pending
// requests then complete with UNAVAILABLE and on_close runs once.
//
// Threading: every method must run on the io_context that owns the socket,
// and all handlers run there. With a single-threaded io_context that is the
// strand; a multi-threaded caller posts to it (see control/control_client.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <asio.hpp>
#include <nlohmann/json.hpp>

#include "common/status.h"
#include "runtime/transport/framed_connection.h"
#include "runtime/transport/message.h"

namespace llmctl::transport {

struct ChannelOptions {
  std::size_t max_frame_bytes = kDefaultMaxFrameBytes;
  int handshake_timeout_ms = 5000;
  int idle_timeout_ms = 0;  // 0: never close for silence
  // Set: TLS first (server or client context, tls_context.h), then the token
  // handshake inside it.
  std::shared_ptr<asio::ssl::context> tls;
};

class Channel : public std::enable_shared_from_this<Channel> {
 public:
  // `id` > 0: a request; answer it with reply(id, ...). `id` == 0: a push.
  using MessageHandler = std::function<void(const Message& message, std::uint64_t id)>;
  using CloseHandler = std::function<void(const Status& why)>;
  using ReplyHandler = std::function<void(Result<nlohmann::json>)>;
  using OpenHandler = std::function<void(Result<std::shared_ptr<Channel>>)>;

  // Client side: resolve, connect and authenticate, bounded by handshake_timeout_ms.
  static void async_connect(asio::io_context& io, const std::string& host, std::uint16_t port, std::string token,
                            ChannelOptions options, OpenHandler handler);
  // Server side: authenticate an accepted socket.
  static void async_accept(asio::ip::tcp::socket socket, std::string token, ChannelOptions options,
                           OpenHandler handler);

  // Starts the read loop; call once after the channel opened.
  void start(MessageHandler on_message, CloseHandler on_close);
  void request(std::string type, nlohmann::json data, std::chrono::milliseconds timeout, ReplyHandler handler);
  void push(std::string type, nlohmann::json data);
  void reply(std::uint64_t id, Result<nlohmann::json> result);
  // Idempotent. Pending requests fail with `why`; on_close runs once.
  void close(const Status& why);

  bool is_open() const { return open_; }
  const std::string& remote_address() const { return remote_address_; }
  std::size_t num_queued_writes() const { return write_queue_.size(); }

  Channel(std::shared_ptr<FramedConnection> connection, ChannelOptions options);

 private:
  struct Pending {
    ReplyHandler handler;
    std::unique_ptr<asio::steady_timer> timer;
  };
  void read_next();
  void dispatch(Message message);
  void send(Message message);
  void write_next();
  void arm_idle_check();
  void fail_pending(std::uint64_t id, Status why);

  std::shared_ptr<FramedConnection> connection_;
  ChannelOptions options_;
  std::string remote_address_;
  bool open_ = true;
  bool writing_ = false;
  std::deque<Message> write_queue_;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, Pending> pending_;
  int num_owed_replies_ = 0;  // requests from the peer not yet answered
  std::chrono::steady_clock::time_point last_read_;
  asio::steady_timer idle_timer_;
  MessageHandler on_message_;
  CloseHandler on_close_;
};

// "UNAVAILABLE" <-> StatusCode, for error replies that keep their code.
StatusCode status_code_from_name(std::string_view name);

}  // namespace llmctl::transport
