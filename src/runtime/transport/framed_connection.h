// FramedConnection: messages over a TCP stream, each frame a 4-byte big-endian
// payload length followed by the payload (an encoded Message). A frame longer
// than max_frame_bytes, or a payload that is not a valid Message, fails that
// read with INVALID_ARGUMENT; the owner then closes only this connection.
// After async_start_tls() the same frames travel inside TLS.
//
// Threading: all handlers run on the socket's executor. At most one read and
// one write may be outstanding at a time (request/response use). Keep the
// connection alive with shared_from_this() captured by the handlers.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <asio.hpp>
#include <asio/ssl.hpp>

#include "common/status.h"
#include "runtime/transport/message.h"

namespace llmctl::transport {

constexpr std::size_t kFrameHeaderBytes = 4;
constexpr std::size_t kDefaultMaxFrameBytes = 1u << 20;

// The frame for a payload: header then bytes.
std::string encode_frame(std::string_view payload);

class FramedConnection : public std::enable_shared_from_this<FramedConnection> {
 public:
  using ReadHandler = std::function<void(Status, Message)>;
  using WriteHandler = std::function<void(Status)>;

  explicit FramedConnection(asio::ip::tcp::socket socket, std::size_t max_frame_bytes = kDefaultMaxFrameBytes);

  // Wraps the connection in TLS before any frame is exchanged. A server whose
  // peer does not start with a TLS record (a client without TLS) tells it so
  // in a plain error frame and fails with PERMISSION_DENIED.
  void async_start_tls(std::shared_ptr<asio::ssl::context> context, bool as_server, WriteHandler handler);
  bool is_tls() const { return tls_ != nullptr; }

  void async_read(ReadHandler handler);
  void async_write(const Message& message, WriteHandler handler);
  // Idempotent; pending operations complete with an error.
  void close();

  // "10.0.0.5:41234", or "?" once closed.
  const std::string& remote_address() const { return remote_address_; }
  asio::ip::tcp::socket& socket() { return socket_; }

 private:
  template <typename Buffer, typename Handler>
  void read_exactly(const Buffer& buffer, Handler&& handler);
  void tls_handshake(bool as_server, WriteHandler handler);

  asio::ip::tcp::socket socket_;
  std::shared_ptr<asio::ssl::context> tls_context_;
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;  // set once TLS starts
  std::size_t max_frame_bytes_;
  std::string remote_address_;
  std::array<unsigned char, kFrameHeaderBytes> header_{};
  std::string read_payload_;
  std::string write_buffer_;
};

}  // namespace llmctl::transport
