#include "runtime/server/http_connection.h"

#include <algorithm>
#include <cctype>
#include <climits>

#include <fmt/format.h>

#include "runtime/server/api_error.h"

namespace llmctl::server {
namespace {

// Exchange handles outlive requests harmlessly: each carries the sequence
// number of its request, and the connection ignores calls for older ones.
class ConnectionExchange final : public HttpExchange {
 public:
  ConnectionExchange(std::shared_ptr<HttpConnection> conn, uint64_t seq, HttpRequest request)
      : conn_(std::move(conn)), seq_(seq), request_(std::move(request)) {}
  const HttpRequest& request() const override { return request_; }
  void respond(HttpResponse response) override { conn_->respond(seq_, std::move(response)); }
  void start_stream(int status, std::string content_type, HttpHeaders headers) override {
    conn_->start_stream(seq_, status, content_type, headers);
  }
  void send_chunk(std::string data) override { conn_->send_chunk(seq_, data); }
  void end_stream() override { conn_->end_stream(seq_); }
  bool closed() const override { return conn_->exchange_closed(seq_); }
  void on_close(std::function<void()> callback) override { conn_->set_on_close(seq_, std::move(callback)); }

 private:
  std::shared_ptr<HttpConnection> conn_;
  uint64_t seq_;
  HttpRequest request_;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string status_line_and_headers(int status, const std::string& content_type, const HttpHeaders& headers,
                                    bool keep_alive, const std::string* length_or_chunked) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\n", status, http_reason_phrase(status));
  if (!content_type.empty()) out += fmt::format("Content-Type: {}\r\n", content_type);
  for (const auto& [name, value] : headers) out += fmt::format("{}: {}\r\n", name, value);
  if (length_or_chunked != nullptr) out += *length_or_chunked;
  out += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  out += "\r\n";
  return out;
}

}  // namespace

HttpConnection::HttpConnection(asio::ip::tcp::socket socket, const HttpServerOptions& options, HttpHandler& handler,
                               std::weak_ptr<bool> server_alive, HttpServer* server, uint64_t id)
    : socket_(std::move(socket)),
      timer_(socket_.get_executor()),
      options_(options),
      handler_(handler),
      server_alive_(std::move(server_alive)),
      server_(server),
      id_(id) {
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
}

http_parser_settings HttpConnection::parser_settings() {
  http_parser_settings s;
  http_parser_settings_init(&s);
  s.on_message_begin = &HttpConnection::on_message_begin;
  s.on_url = &HttpConnection::on_url;
  s.on_header_field = &HttpConnection::on_header_field;
  s.on_header_value = &HttpConnection::on_header_value;
  s.on_headers_complete = &HttpConnection::on_headers_complete;
  s.on_body = &HttpConnection::on_body;
  s.on_message_complete = &HttpConnection::on_message_complete;
  return s;
}

void HttpConnection::start() {
  asio::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  arm_timer(options_.idle_timeout, false);
  read_more();
}

void HttpConnection::close() {
  if (closed_) return;
  closed_ = true;
  phase_ = Phase::kClosing;
  asio::error_code ignored;
  timer_.cancel();
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  if (!response_done_ && on_close_) {
    auto callback = std::move(on_close_);
    on_close_ = nullptr;
    callback();
  }
  if (server_alive_.lock()) server_->forget(id_);
}

void HttpConnection::arm_timer(std::chrono::milliseconds timeout, bool request_in_progress) {
  timer_.expires_after(timeout);
  timer_.async_wait([self = shared_from_this(), request_in_progress](const asio::error_code& ec) {
    if (ec || self->closed_ || self->phase_ != Phase::kReading) return;
    if (request_in_progress) {
      self->fail(408, "request not received within the request timeout");
    } else {
      self->close();  // idle keep-alive connection
    }
  });
}

void HttpConnection::read_more() {
  if (reading_ || closed_) return;
  // While a request is being handled, bytes of pipelined requests wait here;
  // past a limit we stop reading (TCP pushes back on the client).
  if (phase_ == Phase::kHandling && inbuf_.size() > options_.max_header_bytes + options_.max_body_bytes) return;
  reading_ = true;
  socket_.async_read_some(asio::buffer(read_chunk_), [self = shared_from_this()](const asio::error_code& ec, size_t n) {
    self->reading_ = false;
    if (self->closed_) return;
    if (ec) {
      self->close();  // EOF or reset: a handler in flight learns through on_close
      return;
    }
    self->inbuf_.append(self->read_chunk_, n);
    if (self->phase_ == Phase::kReading) self->parse_buffered();
    self->read_more();
  });
}

void HttpConnection::parse_buffered() {
  static const http_parser_settings kSettings = parser_settings();
  while (phase_ == Phase::kReading && !inbuf_.empty() && !closed_) {
    size_t consumed = http_parser_execute(&parser_, &kSettings, inbuf_.data(), inbuf_.size());
    enum http_errno err = HTTP_PARSER_ERRNO(&parser_);
    if (err == HPE_PAUSED) {
      inbuf_.erase(0, consumed);
      http_parser_pause(&parser_, 0);
      dispatch();
      return;
    }
    if (err != HPE_OK) {
      if (parse_failure_status_ == 413) {
        fail(413, fmt::format("request body is larger than {} bytes", options_.max_body_bytes));
      } else if (parse_failure_status_ == 431 || err == HPE_HEADER_OVERFLOW) {
        fail(431, fmt::format("request headers are larger than {} bytes", options_.max_header_bytes));
      } else {
        fail(400, fmt::format("malformed HTTP request: {}", http_errno_description(err)));
      }
      return;
    }
    inbuf_.erase(0, consumed);
  }
}

int HttpConnection::on_message_begin(http_parser* p) {
  auto* self = static_cast<HttpConnection*>(p->data);
  self->current_ = HttpRequest{};
  self->url_.clear();
  self->field_.clear();
  self->in_value_ = false;
  self->header_bytes_ = 0;
  self->request_started_ = true;
  self->arm_timer(self->options_.request_timeout, true);
  return 0;
}

bool HttpConnection::count_header_bytes(size_t len) {
  header_bytes_ += len;
  if (header_bytes_ > options_.max_header_bytes) {
    parse_failure_status_ = 431;
    return false;
  }
  return true;
}

int HttpConnection::on_url(http_parser* p, const char* at, size_t len) {
  auto* self = static_cast<HttpConnection*>(p->data);
  if (!self->count_header_bytes(len)) return 1;
  self->url_.append(at, len);
  return 0;
}

int HttpConnection::on_header_field(http_parser* p, const char* at, size_t len) {
  auto* self = static_cast<HttpConnection*>(p->data);
  if (!self->count_header_bytes(len)) return 1;
  if (self->in_value_ || self->current_.headers.empty()) {  // a new header begins
    self->current_.headers.emplace_back();
    self->in_value_ = false;
    self->field_.clear();
  }
  self->field_.append(at, len);
  self->current_.headers.back().first = lower(self->field_);
  return 0;
}

int HttpConnection::on_header_value(http_parser* p, const char* at, size_t len) {
  auto* self = static_cast<HttpConnection*>(p->data);
  if (!self->count_header_bytes(len)) return 1;
  self->in_value_ = true;
  self->current_.headers.back().second.append(at, len);
  return 0;
}

int HttpConnection::on_headers_complete(http_parser* p) {
  auto* self = static_cast<HttpConnection*>(p->data);
  HttpRequest& r = self->current_;
  r.method = http_method_str(static_cast<http_method>(p->method));
  size_t q = self->url_.find('?');
  r.path = self->url_.substr(0, q);
  if (q != std::string::npos) r.query = self->url_.substr(q + 1);
  if (p->content_length != ULLONG_MAX && p->content_length > self->options_.max_body_bytes) {
    self->parse_failure_status_ = 413;
    return -1;  // http_parser treats any non-zero as an error; -1 is not "skip body"
  }
  if (lower(std::string(r.header("expect"))) == "100-continue") {
    self->queue_write("HTTP/1.1 100 Continue\r\n\r\n");
  }
  return 0;
}

int HttpConnection::on_body(http_parser* p, const char* at, size_t len) {
  auto* self = static_cast<HttpConnection*>(p->data);
  if (self->current_.body.size() + len > self->options_.max_body_bytes) {
    self->parse_failure_status_ = 413;
    return 1;
  }
  self->current_.body.append(at, len);
  return 0;
}

int HttpConnection::on_message_complete(http_parser* p) {
  auto* self = static_cast<HttpConnection*>(p->data);
  self->current_.keep_alive = http_should_keep_alive(p) != 0;
  http_parser_pause(p, 1);  // one request at a time; parse_buffered() dispatches it
  return 0;
}

void HttpConnection::dispatch() {
  phase_ = Phase::kHandling;
  request_started_ = false;
  timer_.cancel();
  response_done_ = false;
  streaming_ = false;
  ++exchange_seq_;
  on_close_ = nullptr;
  keep_alive_next_ = current_.keep_alive;
  auto exchange = std::make_shared<ConnectionExchange>(shared_from_this(), exchange_seq_, std::move(current_));
  current_ = HttpRequest{};
  read_more();  // notices a client that goes away while we work
  handler_.handle(std::move(exchange));
}

void HttpConnection::finish_exchange(bool keep_alive) {
  response_done_ = true;
  on_close_ = nullptr;
  if (!keep_alive) {
    close_after_write_ = true;
    phase_ = Phase::kClosing;
    if (!writing_ && out_.empty()) close();
    return;
  }
  phase_ = Phase::kReading;
  arm_timer(options_.idle_timeout, false);
  // The next pipelined request may already be buffered.
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    if (self->phase_ == Phase::kReading && !self->closed_) {
      self->parse_buffered();
      self->read_more();
    }
  });
}

void HttpConnection::respond(uint64_t seq, HttpResponse response) {
  if (closed_ || seq != exchange_seq_ || response_done_ || streaming_) return;
  // The request object was moved into the exchange; keep-alive travels here.
  bool keep_alive = keep_alive_next_;
  std::string length = fmt::format("Content-Length: {}\r\n", response.body.size());
  queue_write(status_line_and_headers(response.status, response.content_type, response.headers, keep_alive, &length) +
              response.body);
  finish_exchange(keep_alive);
}

void HttpConnection::start_stream(uint64_t seq, int status, const std::string& content_type,
                                  const HttpHeaders& headers) {
  if (closed_ || seq != exchange_seq_ || response_done_ || streaming_) return;
  streaming_ = true;
  static const std::string kChunked = "Transfer-Encoding: chunked\r\n";
  queue_write(status_line_and_headers(status, content_type, headers, keep_alive_next_, &kChunked));
}

void HttpConnection::send_chunk(uint64_t seq, const std::string& data) {
  if (closed_ || seq != exchange_seq_ || response_done_ || !streaming_ || data.empty()) return;
  queue_write(fmt::format("{:x}\r\n", data.size()) + data + "\r\n");
}

void HttpConnection::end_stream(uint64_t seq) {
  if (closed_ || seq != exchange_seq_ || response_done_ || !streaming_) return;
  queue_write("0\r\n\r\n");
  streaming_ = false;
  finish_exchange(keep_alive_next_);
}

bool HttpConnection::exchange_closed(uint64_t seq) const { return closed_ || seq != exchange_seq_ || response_done_; }

void HttpConnection::set_on_close(uint64_t seq, std::function<void()> callback) {
  if (seq != exchange_seq_ || response_done_) return;
  if (closed_) {
    callback();
    return;
  }
  on_close_ = std::move(callback);
}

void HttpConnection::fail(int status, const std::string& message) {
  if (closed_) return;
  phase_ = Phase::kClosing;
  timer_.cancel();
  HttpResponse r = error_response(status, message, "", "");
  std::string length = fmt::format("Content-Length: {}\r\n", r.body.size());
  queue_write(status_line_and_headers(r.status, r.content_type, r.headers, false, &length) + r.body);
  close_after_write_ = true;
}

void HttpConnection::queue_write(std::string data) {
  if (closed_) return;
  out_.push_back(std::move(data));
  if (!writing_) do_write();
}

void HttpConnection::do_write() {
  if (out_.empty() || closed_) return;
  writing_ = true;
  asio::async_write(socket_, asio::buffer(out_.front()), [self = shared_from_this()](const asio::error_code& ec, size_t) {
    self->writing_ = false;
    if (self->closed_) return;
    if (ec) {
      self->close();
      return;
    }
    self->out_.pop_front();
    if (!self->out_.empty()) {
      self->do_write();
    } else if (self->close_after_write_) {
      // Half-close first so the client reads the whole response before EOF.
      asio::error_code ignored;
      self->socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
      self->close();
    }
  });
}

}  // namespace llmctl::server
