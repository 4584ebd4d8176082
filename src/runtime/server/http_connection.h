// HttpConnection: one client socket. Owned by shared_ptrs held by its pending
// asio operations and by exchanges in flight; lives on the io thread.
// States: reading a request (timer: idle, then request timeout) -> handling it
// (parser paused; a read stays pending to notice a disconnect, buffering any
// pipelined bytes) -> back to reading, or closing.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include <asio.hpp>
#include <http_parser.h>

#include "runtime/server/http_message.h"
#include "runtime/server/http_server.h"

namespace llmctl::server {

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(asio::ip::tcp::socket socket, const HttpServerOptions& options, HttpHandler& handler,
                 std::weak_ptr<bool> server_alive, HttpServer* server, uint64_t id);
  void start();
  void close();

  // Used by the exchange (io thread).
  void respond(uint64_t exchange_seq, HttpResponse response);
  void start_stream(uint64_t exchange_seq, int status, const std::string& content_type, const HttpHeaders& headers);
  void send_chunk(uint64_t exchange_seq, const std::string& data);
  void end_stream(uint64_t exchange_seq);
  bool exchange_closed(uint64_t exchange_seq) const;
  void set_on_close(uint64_t exchange_seq, std::function<void()> callback);

 private:
  enum class Phase { kReading, kHandling, kClosing };
  static http_parser_settings parser_settings();
  static int on_message_begin(http_parser* p);
  static int on_url(http_parser* p, const char* at, size_t len);
  static int on_header_field(http_parser* p, const char* at, size_t len);
  static int on_header_value(http_parser* p, const char* at, size_t len);
  static int on_headers_complete(http_parser* p);
  static int on_body(http_parser* p, const char* at, size_t len);
  static int on_message_complete(http_parser* p);

  void read_more();
  void parse_buffered();
  void dispatch();
  void finish_exchange(bool keep_alive);
  void fail(int status, const std::string& message);  // error response, then close
  void queue_write(std::string data);
  void do_write();
  void arm_timer(std::chrono::milliseconds timeout, bool request_in_progress);
  bool count_header_bytes(size_t len);

  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  const HttpServerOptions& options_;
  HttpHandler& handler_;
  std::weak_ptr<bool> server_alive_;
  HttpServer* server_;
  uint64_t id_;

  http_parser parser_{};
  Phase phase_ = Phase::kReading;
  std::string inbuf_;           // received, not yet parsed
  char read_chunk_[16 * 1024];  // asio's read target
  bool reading_ = false;
  bool request_started_ = false;
  HttpRequest current_;
  std::string url_;
  std::string field_;
  bool in_value_ = false;
  size_t header_bytes_ = 0;
  int parse_failure_status_ = 0;  // 413 / 431 set by a callback that stopped the parser

  uint64_t exchange_seq_ = 0;  // the exchange in flight (handling phase)
  bool response_done_ = true;
  bool streaming_ = false;
  bool close_after_write_ = false;
  bool keep_alive_next_ = true;  // of the request in flight
  std::function<void()> on_close_;

  std::deque<std::string> out_;
  bool writing_ = false;
  bool closed_ = false;
};

}  // namespace llmctl::server
