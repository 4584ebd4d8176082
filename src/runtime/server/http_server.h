// HttpServer: HTTP/1.1 over asio, parsed by libhttp-parser. One io_context
// (run by the caller's thread(s); the server assumes a single io thread so
// handlers need no locks). Keep-alive and pipelined requests (answered in
// order, one at a time), limits on header and body size (431 / 413),
// timeouts against slow or idle clients (408 / close), malformed bytes -> 400
// and that connection alone is closed.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include <asio.hpp>

#include "common/status.h"
#include "runtime/server/http_message.h"

namespace llmctl::server {

struct HttpServerOptions {
  std::size_t max_header_bytes = 64 * 1024;       // request line + headers; beyond -> 431
  std::size_t max_body_bytes = 16 * 1024 * 1024;  // beyond -> 413
  // From a request's first byte to its last; a slower client gets 408.
  std::chrono::milliseconds request_timeout{30000};
  // Keep-alive connection with no request in progress; then closed.
  std::chrono::milliseconds idle_timeout{120000};
  std::size_t max_connections = 16384;  // further clients are accepted and closed at once
};

class HttpConnection;

class HttpServer {
 public:
  HttpServer(asio::io_context& io, HttpServerOptions options, HttpHandler& handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts accepting. Port 0 picks a free port (see port()).
  Status listen(const std::string& host, uint16_t port);
  uint16_t port() const { return port_; }
  // Stops accepting and closes every connection. Io thread only.
  void stop();
  std::size_t num_connections() const { return connections_.size(); }

 private:
  friend class HttpConnection;
  void accept();
  void forget(uint64_t connection_id);

  asio::io_context& io_;
  HttpServerOptions options_;
  HttpHandler& handler_;
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer accept_retry_timer_;
  uint16_t port_ = 0;
  uint64_t next_connection_id_ = 1;
  std::unordered_map<uint64_t, std::weak_ptr<HttpConnection>> connections_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace llmctl::server
