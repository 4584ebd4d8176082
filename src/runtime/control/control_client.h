// ControlClient: a blocking client of the head for the CLI (status, nodes,
// kv, submit) and tests. Owns a private io_context and one thread running
// it; call() posts the request onto that thread and waits for the reply.
// Safe to call from one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include <asio.hpp>
#include <nlohmann/json.hpp>

#include "common/status.h"
#include "runtime/transport/channel.h"
#include "runtime/transport/tls_context.h"

namespace llmctl::control {

class ControlClient {
 public:
  // UNAVAILABLE (nothing listening), DEADLINE_EXCEEDED, PERMISSION_DENIED (token).
  // `tls` set: TLS first (a client context, transport/tls_context.h).
  static Result<std::unique_ptr<ControlClient>> connect(const std::string& host, std::uint16_t port,
                                                        const std::string& token, std::chrono::milliseconds timeout,
                                                        transport::TlsContext tls = nullptr);
  ~ControlClient();

  Result<nlohmann::json> call(const std::string& type, const nlohmann::json& data, std::chrono::milliseconds timeout);

 private:
  ControlClient();
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  std::shared_ptr<transport::Channel> channel_;
};

struct ClusterAccess;
// The head named by `access` (address, token, and its TLS trust file if any).
Result<std::unique_ptr<ControlClient>> connect_to(const ClusterAccess& access, std::chrono::milliseconds timeout);

// "host:port" -> (host, port); the port defaults to 6379.
Result<std::pair<std::string, std::uint16_t>> parse_host_port(const std::string& address);

}  // namespace llmctl::control
