#include "runtime/transport/client.h"

#include <fmt/format.h>

#include "runtime/transport/handshake.h"

namespace llmctl::transport {

Client::~Client() {
  if (connection_) connection_->close();
}

bool Client::run_until(const bool& done, std::chrono::steady_clock::time_point deadline) {
  io_->restart();
  while (!done && std::chrono::steady_clock::now() < deadline) {
    io_->run_one_until(deadline);
  }
  if (done) return true;
  if (connection_) connection_->close();
  io_->restart();
  io_->run();  // handlers see operation_aborted and touch nothing that is gone
  return false;
}

Result<std::unique_ptr<Client>> Client::connect(const std::string& host, std::uint16_t port, const std::string& token,
                                                 std::chrono::milliseconds timeout, std::size_t max_frame_bytes) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_ptr<Client> client(new Client());
  client->io_ = std::make_unique<asio::io_context>();
  asio::ip::tcp::resolver resolver(*client->io_);
  asio::error_code ec;
  auto endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (ec) return Status::not_found(fmt::format("{} does not resolve: {}", host, ec.message()));

  asio::ip::tcp::socket socket(*client->io_);
  bool done = false;
  asio::error_code connect_ec;
  asio::async_connect(socket, endpoints, [&](asio::error_code e, const asio::ip::tcp::endpoint&) {
    connect_ec = e;
    done = true;
  });
  client->io_->restart();
  while (!done && std::chrono::steady_clock::now() < deadline) client->io_->run_one_until(deadline);
  if (!done) {
    socket.close(ec);
    client->io_->restart();
    client->io_->run();
    return Status::deadline_exceeded(fmt::format("connecting to {}:{} timed out after {} ms", host, port, timeout.count()));
  }
  if (connect_ec) {
    return Status::unavailable(fmt::format("connecting to {}:{}: {}", host, port, connect_ec.message()));
  }
  client->connection_ = std::make_shared<FramedConnection>(std::move(socket), max_frame_bytes);

  done = false;
  Status handshake;
  async_client_handshake(client->connection_, token, [&](Status s) {
    handshake = std::move(s);
    done = true;
  });
  if (!client->run_until(done, deadline)) {
    return Status::deadline_exceeded(fmt::format("handshake with {}:{} timed out", host, port));
  }
  if (!handshake.is_ok()) {
    client->connection_->close();
    return handshake;
  }
  return client;
}

Result<nlohmann::json> Client::call(const std::string& type, const nlohmann::json& body,
                                    std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool done = false;
  Status status;
  Message reply;
  auto conn = connection_;
  conn->async_write(Message{type, body}, [&, conn](Status s) {
    if (!s.is_ok()) {
      status = std::move(s);
      done = true;
      return;
    }
    conn->async_read([&](Status s2, Message m) {
      status = std::move(s2);
      reply = std::move(m);
      done = true;
    });
  });
  if (!run_until(done, deadline)) {
    return Status::deadline_exceeded(fmt::format("{} to {} got no reply within {} ms", type, remote_address(), timeout.count()));
  }
  if (!status.is_ok()) return status;
  if (reply.type == kErrorType) {
    auto it = reply.body.find("message");
    return Status::unavailable(fmt::format("{} answered {}: {}", remote_address(), type,
                                           it != reply.body.end() && it->is_string() ? it->get<std::string>() : "error"));
  }
  return std::move(reply.body);
}

std::string Client::local_address() const {
  asio::error_code ec;
  auto ep = connection_->socket().local_endpoint(ec);
  return ec ? "" : fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

}  // namespace llmctl::transport
