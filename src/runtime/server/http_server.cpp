#include "runtime/server/http_server.h"

#include <fmt/format.h>

#include "common/logging.h"
#include "runtime/server/http_connection.h"

namespace llmctl::server {

HttpServer::HttpServer(asio::io_context& io, HttpServerOptions options, HttpHandler& handler)
    : io_(io), options_(options), handler_(handler), acceptor_(io), accept_retry_timer_(io) {}

HttpServer::~HttpServer() {
  *alive_ = false;
  asio::error_code ignored;
  acceptor_.close(ignored);
}

Status HttpServer::listen(const std::string& host, uint16_t port) {
  asio::error_code ec;
  asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) return Status::invalid_argument(fmt::format("--host {}: not an IP address", host));
  asio::ip::tcp::endpoint endpoint(address, port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::already_exists(fmt::format("cannot listen on {}:{}: {}", host, port, ec.message()));
  }
  port_ = acceptor_.local_endpoint().port();
  accept();
  return Status::ok();
}

void HttpServer::accept() {
  acceptor_.async_accept([this, alive = std::weak_ptr<bool>(alive_)](const asio::error_code& ec,
                                                                      asio::ip::tcp::socket socket) {
    if (!alive.lock() || !acceptor_.is_open()) return;
    if (ec) {
      // Out of file descriptors and the like: back off instead of spinning.
      logger("server")->warn("accept failed: {}", ec.message());
      accept_retry_timer_.expires_after(std::chrono::milliseconds(50));
      accept_retry_timer_.async_wait([this, alive](const asio::error_code& e) {
        if (!e && alive.lock()) accept();
      });
      return;
    }
    if (connections_.size() >= options_.max_connections) {
      asio::error_code ignored;
      socket.close(ignored);
    } else {
      uint64_t id = next_connection_id_++;
      auto conn = std::make_shared<HttpConnection>(std::move(socket), options_, handler_, alive_, this, id);
      connections_[id] = conn;
      conn->start();
    }
    accept();
  });
}

void HttpServer::forget(uint64_t connection_id) { connections_.erase(connection_id); }

void HttpServer::stop() {
  asio::error_code ignored;
  acceptor_.close(ignored);
  accept_retry_timer_.cancel();
  auto connections = connections_;
  for (auto& [id, weak] : connections) {
    if (auto conn = weak.lock()) conn->close();
  }
  connections_.clear();
}

}  // namespace llmctl::server
