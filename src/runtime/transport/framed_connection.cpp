#include "runtime/transport/framed_connection.h"

#include <fmt/format.h>

namespace llmctl::transport {

std::string encode_frame(std::string_view payload) {
  std::string frame(kFrameHeaderBytes, '\0');
  auto n = static_cast<std::uint32_t>(payload.size());
  frame[0] = static_cast<char>((n >> 24) & 0xff);
  frame[1] = static_cast<char>((n >> 16) & 0xff);
  frame[2] = static_cast<char>((n >> 8) & 0xff);
  frame[3] = static_cast<char>(n & 0xff);
  frame.append(payload);
  return frame;
}

FramedConnection::FramedConnection(asio::ip::tcp::socket socket, std::size_t max_frame_bytes)
    : socket_(std::move(socket)), max_frame_bytes_(max_frame_bytes) {
  asio::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  remote_address_ = ec ? "?" : fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

template <typename Buffer, typename Handler>
void FramedConnection::read_exactly(const Buffer& buffer, Handler&& handler) {
  if (tls_) {
    asio::async_read(*tls_, buffer, std::forward<Handler>(handler));
  } else {
    asio::async_read(socket_, buffer, std::forward<Handler>(handler));
  }
}

void FramedConnection::async_start_tls(std::shared_ptr<asio::ssl::context> context, bool as_server,
                                       WriteHandler handler) {
  tls_context_ = std::move(context);
  if (!as_server) return tls_handshake(false, std::move(handler));
  // Every TLS connection opens with a handshake record (content type 22);
  // a plain llmctl client opens with a frame length, whose first byte is 0.
  auto self = shared_from_this();
  socket_.async_wait(asio::socket_base::wait_read, [this, self, handler = std::move(handler)](asio::error_code ec) {
    if (ec) return handler(Status::unavailable(fmt::format("waiting for TLS from {}: {}", remote_address_, ec.message())));
    unsigned char first = 0;
    asio::error_code peek_ec;
    std::size_t n = socket_.receive(asio::buffer(&first, 1), asio::socket_base::message_peek, peek_ec);
    if (peek_ec || n == 0) {
      return handler(Status::unavailable(fmt::format("{} closed before TLS started", remote_address_)));
    }
    constexpr unsigned char kTlsHandshakeRecord = 22;
    if (first != kTlsHandshakeRecord) {
      Status refused = Status::permission_denied(
          fmt::format("{} did not start TLS (a client without --tls-ca against a TLS head)", remote_address_));
      write_buffer_ = encode_frame(encode_message(
          make_error("this head requires TLS: give the client --tls-ca with the head's certificate")));
      asio::async_write(socket_, asio::buffer(write_buffer_),
                        [self, handler, refused](asio::error_code, std::size_t) { handler(refused); });
      return;
    }
    tls_handshake(true, handler);
  });
}

void FramedConnection::tls_handshake(bool as_server, WriteHandler handler) {
  tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket_, *tls_context_);
  auto self = shared_from_this();
  tls_->async_handshake(as_server ? asio::ssl::stream_base::server : asio::ssl::stream_base::client,
                        [this, self, as_server, handler = std::move(handler)](asio::error_code ec) {
                          if (!ec) return handler(Status::ok());
                          handler(Status::permission_denied(fmt::format(
                              "TLS handshake with {} failed: {}{}", remote_address_, ec.message(),
                              as_server ? "" : " (does the head use TLS, with a certificate that --tls-ca trusts?)")));
                        });
}

void FramedConnection::async_read(ReadHandler handler) {
  auto self = shared_from_this();
  read_exactly(asio::buffer(header_), [this, self, handler = std::move(handler)](asio::error_code ec, std::size_t) {
    if (ec) {
      handler(Status::unavailable(fmt::format("reading from {}: {}", remote_address_, ec.message())), {});
      return;
    }
    std::size_t n = (std::size_t{header_[0]} << 24) | (std::size_t{header_[1]} << 16) | (std::size_t{header_[2]} << 8) |
                    std::size_t{header_[3]};
    if (n > max_frame_bytes_) {
      handler(Status::invalid_argument(
                  fmt::format("frame of {} bytes from {} exceeds the limit of {}", n, remote_address_, max_frame_bytes_)),
              {});
      return;
    }
    read_payload_.assign(n, '\0');
    read_exactly(asio::buffer(read_payload_), [this, self, handler](asio::error_code ec2, std::size_t) {
      if (ec2) {
        handler(Status::unavailable(fmt::format("reading from {}: {}", remote_address_, ec2.message())), {});
        return;
      }
      auto message = decode_message(read_payload_);
      if (!message.is_ok()) {
        handler(message.status().with_context(fmt::format("from {}", remote_address_)), {});
        return;
      }
      handler(Status::ok(), std::move(message).value());
    });
  });
}

void FramedConnection::async_write(const Message& message, WriteHandler handler) {
  write_buffer_ = encode_frame(encode_message(message));
  auto self = shared_from_this();
  auto done = [this, self, handler = std::move(handler)](asio::error_code ec, std::size_t) {
    if (ec) {
      handler(Status::unavailable(fmt::format("writing to {}: {}", remote_address_, ec.message())));
      return;
    }
    handler(Status::ok());
  };
  if (tls_) {
    asio::async_write(*tls_, asio::buffer(write_buffer_), std::move(done));
  } else {
    asio::async_write(socket_, asio::buffer(write_buffer_), std::move(done));
  }
}

void FramedConnection::close() {
  asio::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace llmctl::transport
