#include "runtime/control/control_client.h"

#include <future>

#include <fmt/format.h>

#include "runtime/control/daemon.h"

namespace llmctl::control {

Result<std::pair<std::string, std::uint16_t>> parse_host_port(const std::string& address) {
  if (address.empty()) return Status::invalid_argument("empty head address (want HOST:PORT)");
  std::string host = address;
  std::uint16_t port = 6379;
  auto colon = address.rfind(':');
  if (colon != std::string::npos && address.find(':') == colon) {
    host = address.substr(0, colon);
    std::string p = address.substr(colon + 1);
    char* end = nullptr;
    long v = std::strtol(p.c_str(), &end, 10);
    if (p.empty() || *end != '\0' || v <= 0 || v > 65535) {
      return Status::invalid_argument(fmt::format("bad port in address \"{}\"", address));
    }
    port = static_cast<std::uint16_t>(v);
  }
  if (host.empty()) return Status::invalid_argument(fmt::format("no host in address \"{}\"", address));
  return std::make_pair(host, port);
}

ControlClient::ControlClient() : work_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}

ControlClient::~ControlClient() {
  asio::post(io_, [this] {
    if (channel_) channel_->close(Status::unavailable("client closed"));
    channel_.reset();
    work_.reset();
  });
  thread_.join();
}

Result<std::unique_ptr<ControlClient>> ControlClient::connect(const std::string& host, std::uint16_t port,
                                                              const std::string& token, std::chrono::milliseconds timeout,
                                                              transport::TlsContext tls) {
  auto client = std::unique_ptr<ControlClient>(new ControlClient());
  std::promise<Status> opened;
  transport::ChannelOptions options;
  options.handshake_timeout_ms = static_cast<int>(timeout.count());
  options.max_frame_bytes = 64u << 20;  // status of a big cluster is large
  options.tls = std::move(tls);
  ControlClient* c = client.get();
  asio::post(c->io_, [c, host, port, token, options, &opened] {
    transport::Channel::async_connect(c->io_, host, port, token, options,
                                      [c, &opened](Result<std::shared_ptr<transport::Channel>> r) {
                                        if (!r.is_ok()) return opened.set_value(r.status());
                                        c->channel_ = std::move(r).value();
                                        c->channel_->start([](const transport::Message&, std::uint64_t) {},
                                                           [](const Status&) {});
                                        opened.set_value(Status::ok());
                                      });
  });
  RETURN_IF_ERROR(opened.get_future().get());
  return client;
}

Result<nlohmann::json> ControlClient::call(const std::string& type, const nlohmann::json& data,
                                           std::chrono::milliseconds timeout) {
  std::promise<Result<nlohmann::json>> done;
  asio::post(io_, [this, type, data, timeout, &done] {
    if (!channel_) return done.set_value(Status::unavailable("not connected"));
    channel_->request(type, data, timeout, [&done](Result<nlohmann::json> r) { done.set_value(std::move(r)); });
  });
  return done.get_future().get();
}

Result<std::unique_ptr<ControlClient>> connect_to(const ClusterAccess& access, std::chrono::milliseconds timeout) {
  ASSIGN_OR_RETURN(auto hp, parse_host_port(access.address));
  transport::TlsContext tls;
  if (!access.tls_ca.empty()) {
    ASSIGN_OR_RETURN(tls, transport::make_client_tls_context(access.tls_ca));
  }
  return ControlClient::connect(hp.first, hp.second, access.token, timeout, std::move(tls));
}

}  // namespace llmctl::control
