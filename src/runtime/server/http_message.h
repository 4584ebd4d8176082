// HTTP/1.1 request and response values, and HttpExchange: the handle a
// route handler uses to answer one request (whole or as a chunked stream).
//
// Threading: an exchange, and every callback it makes, lives on the server's
// io thread; handlers that wait on other threads post back to it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llmctl::server {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query
  std::string query;
  HttpHeaders headers;  // names lower-cased, in arrival order
  std::string body;
  bool keep_alive = true;

  // The first header of that (lower-case) name; empty when absent.
  std::string_view header(std::string_view lower_name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  HttpHeaders headers;  // extra headers
  std::string body;
};

std::string_view http_reason_phrase(int status);

class HttpExchange {
 public:
  virtual ~HttpExchange() = default;
  virtual const HttpRequest& request() const = 0;
  // Sends a whole response. Ignored once the client is gone.
  virtual void respond(HttpResponse response) = 0;
  // A chunked response: start_stream once, send_chunk any number of times,
  // end_stream once.
  virtual void start_stream(int status, std::string content_type, HttpHeaders headers) = 0;
  virtual void send_chunk(std::string data) = 0;
  virtual void end_stream() = 0;
  // True once the client disconnected (or the connection was closed).
  virtual bool closed() const = 0;
  // Called once, on the io thread, if the client disconnects before the
  // response is complete.
  virtual void on_close(std::function<void()> callback) = 0;
};

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // Called on the io thread for each complete request; the handler answers
  // now or later through the exchange.
  virtual void handle(std::shared_ptr<HttpExchange> exchange) = 0;
};

}  // namespace llmctl::server
