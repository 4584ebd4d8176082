#include "runtime/transport/server.h"

#include <future>

#include <fmt/format.h>

#include "common/logging.h"
#include "runtime/transport/handshake.h"

namespace llmctl::transport {

class Server::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Server& server, asio::ip::tcp::socket socket)
      : server_(server),
        conn_(std::make_shared<FramedConnection>(std::move(socket), server.options_.max_frame_bytes)),
        timer_(server.io_) {}

  void start() {
    arm_timer(server_.options_.handshake_timeout_ms, "handshake");
    auto self = shared_from_this();
    async_server_handshake(conn_, server_.token_, [self](Status s) {
      if (!s.is_ok()) {
        if (s.code() == StatusCode::kPermissionDenied) {
          ++self->server_.auth_failures_;
          logger("transport")->warn("refused connection from {}: {}", self->conn_->remote_address(), s.message());
        } else {
          logger("transport")->debug("handshake with {} failed: {}", self->conn_->remote_address(), s.message());
        }
        self->close();
        return;
      }
      self->read_next();
    });
  }

  void close() {
    timer_.cancel();
    conn_->close();
  }

  asio::any_io_executor executor() { return conn_->socket().get_executor(); }

 private:
  void arm_timer(int timeout_ms, const char* phase) {
    timer_.expires_after(std::chrono::milliseconds(timeout_ms));
    std::weak_ptr<Session> weak = shared_from_this();
    timer_.async_wait([weak, phase](asio::error_code ec) {
      if (ec) return;  // cancelled or re-armed
      if (auto self = weak.lock()) {
        logger("transport")->debug("closing {}: {} timed out", self->conn_->remote_address(), phase);
        self->conn_->close();
      }
    });
  }

  void read_next() {
    arm_timer(server_.options_.idle_timeout_ms, "idle connection");
    auto self = shared_from_this();
    conn_->async_read([self](Status s, Message request) {
      if (!s.is_ok()) {
        if (s.code() == StatusCode::kInvalidArgument) {
          logger("transport")->warn("closing connection from {}: {}", self->conn_->remote_address(), s.message());
        }
        self->close();
        return;
      }
      self->dispatch(std::move(request));
    });
  }

  void dispatch(Message request) {
    timer_.cancel();
    auto it = server_.handlers_.find(request.type);
    if (it == server_.handlers_.end()) {
      reply(make_error(fmt::format("unknown request type {}", request.type)));
      return;
    }
    auto self = shared_from_this();
    Handler handler = it->second;
    asio::post(server_.workers_, [self, handler, request = std::move(request)] {
      Result<nlohmann::json> result = handler(request, self->conn_->remote_address());
      Message response = result.is_ok() ? Message{std::string(kReplyType), std::move(result).value()}
                                        : make_error(result.status().message());
      asio::post(self->executor(), [self, response = std::move(response)] { self->reply(response); });
    });
  }

  void reply(const Message& response) {
    auto self = shared_from_this();
    conn_->async_write(response, [self](Status s) {
      if (!s.is_ok()) return self->close();
      self->read_next();
    });
  }

  Server& server_;
  std::shared_ptr<FramedConnection> conn_;
  asio::steady_timer timer_;
};

Server::Server(asio::io_context& io, std::string token, ServerOptions options)
    : io_(io),
      token_(std::move(token)),
      options_(options),
      workers_(static_cast<std::size_t>(std::max(1, options.num_handler_threads))) {}

Server::~Server() { stop(); }

void Server::on(std::string type, Handler handler) { handlers_[std::move(type)] = std::move(handler); }

Result<std::uint16_t> Server::listen(const std::string& address, std::uint16_t port) {
  asio::error_code ec;
  auto addr = asio::ip::make_address(address, ec);
  if (ec) return Status::invalid_argument(fmt::format("listen address {}: {}", address, ec.message()));
  auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(io_);
  asio::ip::tcp::endpoint endpoint(addr, port);
  if (acceptor->open(endpoint.protocol(), ec); ec) return Status::io_error(fmt::format("socket: {}", ec.message()));
  acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (acceptor->bind(endpoint, ec); ec) {
    auto code = ec == asio::error::address_in_use ? StatusCode::kAlreadyExists : StatusCode::kIoError;
    return Status(code, fmt::format("binding {}:{}: {}", address, port, ec.message()));
  }
  if (acceptor->listen(asio::socket_base::max_listen_connections, ec); ec) {
    return Status::io_error(fmt::format("listening on {}:{}: {}", address, port, ec.message()));
  }
  std::uint16_t bound = acceptor->local_endpoint(ec).port();
  acceptors_.push_back(std::move(acceptor));
  accept(*acceptors_.back());
  return bound;
}

void Server::accept(asio::ip::tcp::acceptor& acceptor) {
  acceptor.async_accept([this, &acceptor](asio::error_code ec, asio::ip::tcp::socket socket) {
    if (ec == asio::error::operation_aborted || stopped_) return;
    if (!ec) {
      auto session = std::make_shared<Session>(*this, std::move(socket));
      {
        std::lock_guard lock(sessions_mu_);
        std::erase_if(sessions_, [](const std::weak_ptr<Session>& w) { return w.expired(); });
        sessions_.push_back(session);
      }
      session->start();
    } else {
      // EMFILE and friends: keep accepting; the log says why connections fail.
      logger("transport")->warn("accept failed: {}", ec.message());
    }
    accept(acceptor);
  });
}

void Server::stop() {
  if (stopped_.exchange(true)) return;
  auto close_all = [this] {
    for (auto& a : acceptors_) {
      asio::error_code ignored;
      a->close(ignored);
    }
    std::lock_guard lock(sessions_mu_);
    for (auto& w : sessions_) {
      if (auto s = w.lock()) s->close();
    }
  };
  // Acceptors and sessions belong to the io_context's thread: close them there
  // when it runs, directly when it does not.
  if (io_.stopped() || io_.get_executor().running_in_this_thread()) {
    close_all();
  } else {
    auto done = std::make_shared<std::promise<void>>();
    asio::post(io_, [close_all, done] {
      close_all();
      done->set_value();
    });
    done->get_future().wait();
  }
  workers_.join();
}

}  // namespace llmctl::transport
