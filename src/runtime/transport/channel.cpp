#include "runtime/transport/channel.h"

#include <fmt/format.h>

#include "runtime/transport/handshake.h"

namespace llmctl::transport {
namespace {

// Calls the open handler at most once: whichever of the handshake and its
// deadline finishes first wins.
struct OpenOnce {
  Channel::OpenHandler handler;
  bool done = false;
  void finish(Result<std::shared_ptr<Channel>> result) {
    if (done) return;
    done = true;
    handler(std::move(result));
  }
};

void run_handshake(std::shared_ptr<FramedConnection> conn, std::string token, ChannelOptions options, bool as_client,
                   std::shared_ptr<OpenOnce> once) {
  auto timer = std::make_shared<asio::steady_timer>(conn->socket().get_executor());
  timer->expires_after(std::chrono::milliseconds(options.handshake_timeout_ms));
  timer->async_wait([conn, once](asio::error_code ec) {
    if (ec) return;  // cancelled: the handshake finished first
    once->finish(Status::deadline_exceeded(fmt::format("handshake with {} timed out", conn->remote_address())));
    conn->close();
  });
  auto done = [conn, options, once, timer](Status s) {
    timer->cancel();
    if (!s.is_ok()) {
      conn->close();
      once->finish(s);
      return;
    }
    if (once->done) return;  // the deadline closed it already
    once->finish(std::make_shared<Channel>(conn, options));
  };
  auto authenticate = [conn, token = std::move(token), as_client, done](Status tls) mutable {
    if (!tls.is_ok()) return done(tls);
    if (as_client) {
      async_client_handshake(conn, std::move(token), done);
    } else {
      async_server_handshake(conn, std::move(token), done);
    }
  };
  if (options.tls) {
    conn->async_start_tls(options.tls, /*as_server=*/!as_client, std::move(authenticate));
  } else {
    authenticate(Status::ok());
  }
}

}  // namespace

StatusCode status_code_from_name(std::string_view name) {
  for (int c = 0; c <= static_cast<int>(StatusCode::kInternal); ++c) {
    if (status_code_name(static_cast<StatusCode>(c)) == name) return static_cast<StatusCode>(c);
  }
  return StatusCode::kInternal;
}

void Channel::async_connect(asio::io_context& io, const std::string& host, std::uint16_t port, std::string token,
                            ChannelOptions options, OpenHandler handler) {
  auto once = std::make_shared<OpenOnce>();
  once->handler = std::move(handler);
  auto resolver = std::make_shared<asio::ip::tcp::resolver>(io);
  auto socket = std::make_shared<asio::ip::tcp::socket>(io);
  auto timer = std::make_shared<asio::steady_timer>(io);
  std::string where = fmt::format("{}:{}", host, port);
  timer->expires_after(std::chrono::milliseconds(options.handshake_timeout_ms));
  timer->async_wait([once, socket, resolver, where](asio::error_code ec) {
    if (ec) return;
    resolver->cancel();
    asio::error_code ignored;
    socket->close(ignored);
    once->finish(Status::deadline_exceeded(fmt::format("connecting to {} timed out", where)));
  });
  resolver->async_resolve(
      host, std::to_string(port),
      [once, socket, resolver, timer, where, token = std::move(token), options](
          asio::error_code ec, asio::ip::tcp::resolver::results_type results) mutable {
        if (ec) {
          timer->cancel();
          return once->finish(Status::unavailable(fmt::format("resolving {}: {}", where, ec.message())));
        }
        asio::async_connect(*socket, results,
                            [once, socket, timer, where, token = std::move(token), options](
                                asio::error_code ec2, const asio::ip::tcp::endpoint&) mutable {
                              timer->cancel();
                              if (once->done) return;
                              if (ec2) {
                                return once->finish(
                                    Status::unavailable(fmt::format("connecting to {}: {}", where, ec2.message())));
                              }
                              asio::error_code ignored;
                              socket->set_option(asio::ip::tcp::no_delay(true), ignored);
                              auto conn = std::make_shared<FramedConnection>(std::move(*socket), options.max_frame_bytes);
                              run_handshake(conn, std::move(token), options, /*as_client=*/true, once);
                            });
      });
}

void Channel::async_accept(asio::ip::tcp::socket socket, std::string token, ChannelOptions options,
                           OpenHandler handler) {
  auto once = std::make_shared<OpenOnce>();
  once->handler = std::move(handler);
  asio::error_code ignored;
  socket.set_option(asio::ip::tcp::no_delay(true), ignored);
  auto conn = std::make_shared<FramedConnection>(std::move(socket), options.max_frame_bytes);
  run_handshake(conn, std::move(token), options, /*as_client=*/false, once);
}

Channel::Channel(std::shared_ptr<FramedConnection> connection, ChannelOptions options)
    : connection_(std::move(connection)),
      options_(options),
      remote_address_(connection_->remote_address()),
      idle_timer_(connection_->socket().get_executor()) {}

void Channel::start(MessageHandler on_message, CloseHandler on_close) {
  on_message_ = std::move(on_message);
  on_close_ = std::move(on_close);
  last_read_ = std::chrono::steady_clock::now();
  if (options_.idle_timeout_ms > 0) arm_idle_check();
  read_next();
}

void Channel::arm_idle_check() {
  // Waiting on either side (a reply owed or awaited) is not idleness.
  // One timer tick per half idle period instead of re-arming on every frame:
  // cheap with thousands of channels heartbeating several times a second.
  idle_timer_.expires_after(std::chrono::milliseconds(std::max(1, options_.idle_timeout_ms / 2)));
  idle_timer_.async_wait([self = shared_from_this()](asio::error_code ec) {
    if (ec || !self->open_) return;
    auto silent = std::chrono::steady_clock::now() - self->last_read_;
    if (self->num_owed_replies_ == 0 && self->pending_.empty() && silent > std::chrono::milliseconds(self->options_.idle_timeout_ms)) {
      self->close(Status::deadline_exceeded(
          fmt::format("{} sent no complete frame for {} ms", self->remote_address_, self->options_.idle_timeout_ms)));
      return;
    }
    self->arm_idle_check();
  });
}

void Channel::read_next() {
  connection_->async_read([self = shared_from_this()](Status s, Message m) {
    if (!self->open_) return;
    if (!s.is_ok()) return self->close(s);
    self->last_read_ = std::chrono::steady_clock::now();
    // A peer controls every field's type; a handler that reads one with the
    // wrong expectation must cost that peer its connection, not the daemon.
    try {
      self->dispatch(std::move(m));
    } catch (const nlohmann::json::exception& e) {
      return self->close(Status::invalid_argument(
          fmt::format("{} sent a message with a malformed field: {}", self->remote_address_, e.what())));
    }
    if (self->open_) self->read_next();
  });
}

void Channel::dispatch(Message m) {
  std::uint64_t id = 0;
  if (auto it = m.body.find("id"); it != m.body.end()) {
    if (!it->is_number_unsigned()) {
      return close(Status::invalid_argument(fmt::format("{} sent a message with a non-numeric id", remote_address_)));
    }
    id = it->get<std::uint64_t>();
  }
  if (m.type == kReplyType || m.type == kErrorType) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;  // late reply to a request that timed out
    ReplyHandler handler = std::move(it->second.handler);
    it->second.timer->cancel();
    pending_.erase(it);
    if (m.type == kReplyType) {
      auto data = m.body.find("data");
      handler(data != m.body.end() ? *data : nlohmann::json());
    } else {
      auto field = [&](const char* key, const char* fallback) {
        auto f = m.body.find(key);
        return f != m.body.end() && f->is_string() ? f->get<std::string>() : std::string(fallback);
      };
      std::string code = field("code", "INTERNAL");
      std::string text = field("message", "error without a message");
      handler(Status(status_code_from_name(code), text));
    }
    return;
  }
  Message inner{std::move(m.type), nlohmann::json()};
  if (auto data = m.body.find("data"); data != m.body.end()) inner.body = std::move(*data);
  if (id > 0) ++num_owed_replies_;
  if (on_message_) on_message_(inner, id);
}

void Channel::request(std::string type, nlohmann::json data, std::chrono::milliseconds timeout, ReplyHandler handler) {
  if (!open_) {
    handler(Status::unavailable(fmt::format("connection to {} is closed", remote_address_)));
    return;
  }
  std::uint64_t id = next_id_++;
  Pending p{std::move(handler), std::make_unique<asio::steady_timer>(connection_->socket().get_executor())};
  p.timer->expires_after(timeout);
  p.timer->async_wait([self = shared_from_this(), id, type, timeout](asio::error_code ec) {
    if (ec) return;
    self->fail_pending(id, Status::deadline_exceeded(fmt::format("{} to {} got no reply within {} ms", type,
                                                                 self->remote_address_, timeout.count())));
  });
  pending_.emplace(id, std::move(p));
  send(Message{std::move(type), {{"id", id}, {"data", std::move(data)}}});
}

void Channel::fail_pending(std::uint64_t id, Status why) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  ReplyHandler handler = std::move(it->second.handler);
  pending_.erase(it);
  handler(std::move(why));
}

void Channel::push(std::string type, nlohmann::json data) {
  if (!open_) return;
  send(Message{std::move(type), {{"data", std::move(data)}}});
}

void Channel::reply(std::uint64_t id, Result<nlohmann::json> result) {
  if (num_owed_replies_ > 0) --num_owed_replies_;
  if (!open_ || id == 0) return;
  if (result.is_ok()) {
    send(Message{std::string(kReplyType), {{"id", id}, {"data", std::move(result).value()}}});
  } else {
    send(Message{std::string(kErrorType),
                 {{"id", id},
                  {"message", result.status().message()},
                  {"code", std::string(status_code_name(result.status().code()))}}});
  }
}

void Channel::send(Message message) {
  write_queue_.push_back(std::move(message));
  if (!writing_) write_next();
}

void Channel::write_next() {
  if (write_queue_.empty() || !open_) {
    writing_ = false;
    return;
  }
  writing_ = true;
  Message m = std::move(write_queue_.front());
  write_queue_.pop_front();
  connection_->async_write(m, [self = shared_from_this()](Status s) {
    if (!s.is_ok()) return self->close(s);
    self->write_next();
  });
}

void Channel::close(const Status& why) {
  if (!open_) return;
  open_ = false;
  idle_timer_.cancel();
  connection_->close();
  write_queue_.clear();
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [id, p] : pending) {
    p.timer->cancel();
    p.handler(Status::unavailable(fmt::format("connection to {} closed: {}", remote_address_, why.message())));
  }
  auto on_close = std::move(on_close_);
  on_message_ = nullptr;
  on_close_ = nullptr;
  if (on_close) on_close(why);
}

}  // namespace llmctl::transport
