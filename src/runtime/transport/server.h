// Server: accepts connections on any number of listeners, authenticates each
// with the cluster token (handshake.h), then answers request messages by type.
//
// Per connection: handshake (bounded by handshake_timeout_ms, so half-open or
// silent peers are dropped), then request -> handler -> reply, repeated until
// the peer closes or idles past idle_timeout_ms. A wrong token, a malformed or
// oversized frame closes only that connection and is logged with the peer's
// address. Handlers run on a worker pool (they may block, e.g. to connect
// elsewhere or hash files); sockets are only touched on the io_context.
//
// Thread safety: construct, on() and listen() before running the io_context;
// stop() may be called from any thread. The io_context must outlive the Server.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <asio.hpp>
#include <nlohmann/json.hpp>

#include "common/status.h"
#include "runtime/transport/framed_connection.h"
#include "runtime/transport/message.h"

namespace llmctl::transport {

struct ServerOptions {
  std::size_t max_frame_bytes = kDefaultMaxFrameBytes;
  int handshake_timeout_ms = 5000;
  int idle_timeout_ms = 60000;
  int num_handler_threads = 4;
};

class Server {
 public:
  // The reply body, or an error Status (sent as an "error" message).
  using Handler = std::function<Result<nlohmann::json>(const Message& request, const std::string& peer_address)>;

  Server(asio::io_context& io, std::string token, ServerOptions options = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void on(std::string type, Handler handler);
  // Opens a listener; port 0 picks a free one. Returns the bound port.
  Result<std::uint16_t> listen(const std::string& address, std::uint16_t port);
  // Closes listeners and connections, waits for running handlers.
  void stop();

  int num_listeners() const { return static_cast<int>(acceptors_.size()); }
  // Connections refused for a wrong token so far.
  int num_auth_failures() const { return auth_failures_.load(); }

 private:
  class Session;
  void accept(asio::ip::tcp::acceptor& acceptor);

  asio::io_context& io_;
  std::string token_;
  ServerOptions options_;
  std::map<std::string, Handler> handlers_;
  std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> acceptors_;
  asio::thread_pool workers_;
  std::mutex sessions_mu_;
  std::vector<std::weak_ptr<Session>> sessions_;  // guarded by sessions_mu_
  std::atomic<int> auth_failures_{0};
  std::atomic<bool> stopped_{false};
};

}  // namespace llmctl::transport
