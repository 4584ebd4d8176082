// Client: a blocking, deadline-bounded connection to a Server — connect,
// authenticate, then call(type, body) -> reply body. For tools and tests that
// talk to one peer at a time (the doctor); it owns a private io_context, so it
// needs no thread of its own. Not thread-safe: one call at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <asio.hpp>
#include <nlohmann/json.hpp>

#include "common/status.h"
#include "runtime/transport/framed_connection.h"

namespace llmctl::transport {

class Client {
 public:
  // Resolves host, connects and runs the handshake, all within `timeout`.
  // UNAVAILABLE (refused, unreachable), DEADLINE_EXCEEDED, PERMISSION_DENIED (token).
  static Result<std::unique_ptr<Client>> connect(const std::string& host, std::uint16_t port, const std::string& token,
                                                 std::chrono::milliseconds timeout,
                                                 std::size_t max_frame_bytes = kDefaultMaxFrameBytes);

  // Sends one request and waits for its reply; an "error" reply becomes a Status.
  Result<nlohmann::json> call(const std::string& type, const nlohmann::json& body, std::chrono::milliseconds timeout);

  // The peer's address as seen by this socket ("10.0.0.5:6379").
  const std::string& remote_address() const { return connection_->remote_address(); }
  // This side's address of the connection (what the peer sees us as).
  std::string local_address() const;

  ~Client();

 private:
  Client() = default;
  // Runs the io_context until `done` or the deadline; on the deadline closes
  // the connection and drains pending handlers. True when done in time.
  bool run_until(const bool& done, std::chrono::steady_clock::time_point deadline);

  std::unique_ptr<asio::io_context> io_;
  std::shared_ptr<FramedConnection> connection_;
};

}  // namespace llmctl::transport
