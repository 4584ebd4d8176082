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

void FramedConnection::async_read(ReadHandler handler) {
  auto self = shared_from_this();
  asio::async_read(socket_, asio::buffer(header_), [this, self, handler = std::move(handler)](asio::error_code ec, std::size_t) {
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
    asio::async_read(socket_, asio::buffer(read_payload_), [this, self, handler](asio::error_code ec2, std::size_t) {
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
  asio::async_write(socket_, asio::buffer(write_buffer_), [this, self, handler = std::move(handler)](asio::error_code ec, std::size_t) {
    if (ec) {
      handler(Status::unavailable(fmt::format("writing to {}: {}", remote_address_, ec.message())));
      return;
    }
    handler(Status::ok());
  });
}

void FramedConnection::close() {
  asio::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace llmctl::transport
