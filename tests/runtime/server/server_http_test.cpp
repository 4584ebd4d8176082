// The HTTP layer and OpenAI routes over real sockets, against EchoBackend
// (reversed prompt) and a byte-level codec: id = byte value, 256 = BOS,
// 257 = EOS.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>

#include <asio.hpp>
#include <nlohmann/json.hpp>

#include "runtime/server/echo_backend.h"
#include "runtime/server/http_server.h"
#include "runtime/server/openai_service.h"

namespace llmctl::server {
namespace {

using json = nlohmann::json;
constexpr int32_t kBos = 256;
constexpr int32_t kEos = 257;

class ByteCodec final : public TextCodec {
 public:
  std::vector<int32_t> encode(const std::string& text, bool add_special) const override {
    std::vector<int32_t> ids;
    if (add_special) ids.push_back(kBos);
    for (unsigned char c : text) ids.push_back(c);
    return ids;
  }
  std::string decode(std::span<const int32_t> ids, bool skip) const override {
    std::string s;
    for (int32_t id : ids) {
      if (id < 256) s += static_cast<char>(id);
      else if (!skip) s += id == kBos ? "<s>" : "</s>";
    }
    return s;
  }
  std::unique_ptr<StreamDecoder> stream_decoder(bool skip) const override {
    struct D final : StreamDecoder {
      const ByteCodec* codec;
      bool skip;
      D(const ByteCodec* c, bool s) : codec(c), skip(s) {}
      std::string push(int32_t id) override {
        int32_t one[1] = {id};
        return codec->decode(one, skip);
      }
      std::string finish() override { return ""; }
    };
    return std::make_unique<D>(this, skip);
  }
  Result<std::string> render_chat(const json& messages, bool gen, const json&) const override {
    std::string s;
    for (const auto& m : messages) s += m.value("content", "");
    if (gen) s += "";
    return s;
  }
  bool chat_adds_bos() const override { return false; }
  int32_t vocab_size() const override { return 258; }
};

struct Fixture {
  asio::io_context io;
  ByteCodec codec;
  EchoBackend backend;
  std::unique_ptr<OpenAiService> service;
  std::unique_ptr<HttpServer> server;
  std::thread thread;

  explicit Fixture(std::string api_key = "", std::chrono::microseconds step = std::chrono::microseconds(500))
      : backend(EchoBackendOptions{step, 256, 16, 4096, {kEos}, {kBos}}) {
    OpenAiServiceOptions o;
    o.served_model_name = "echo";
    o.api_key = std::move(api_key);
    o.max_model_len = 128;
    service = std::make_unique<OpenAiService>(io, o, codec, backend);
    HttpServerOptions h;
    h.max_body_bytes = 4096;
    h.max_header_bytes = 2048;
    h.request_timeout = std::chrono::milliseconds(500);
    server = std::make_unique<HttpServer>(io, h, *service);
    REQUIRE(server->listen("127.0.0.1", 0).is_ok());
    thread = std::thread([this] { io.run(); });
  }
  ~Fixture() {
    asio::post(io, [this] { server->stop(); });
    io.stop();
    thread.join();
  }
};

// A blocking client: sends raw bytes, reads until the server closes or a full
// response (Content-Length or chunked end) has arrived.
class Client {
 public:
  explicit Client(uint16_t port) : socket_(io_) { socket_.connect({asio::ip::make_address("127.0.0.1"), port}); }
  void send(const std::string& bytes) { asio::write(socket_, asio::buffer(bytes)); }
  std::string read_response() {
    std::string data = std::move(leftover_);
    leftover_.clear();
    char buf[4096];
    while (true) {
      size_t end = data.find("\r\n\r\n");
      if (end != std::string::npos) {
        std::string head = data.substr(0, end);
        size_t cl = head.find("Content-Length: ");
        if (cl != std::string::npos) {
          size_t len = std::stoul(head.substr(cl + 16));
          if (data.size() >= end + 4 + len) {
            leftover_ = data.substr(end + 4 + len);
            return data.substr(0, end + 4 + len);
          }
        } else if (size_t last = data.find("\r\n0\r\n\r\n", end); last != std::string::npos) {
          leftover_ = data.substr(last + 7);
          return data.substr(0, last + 7);
        }
      }
      asio::error_code ec;
      size_t n = socket_.read_some(asio::buffer(buf), ec);
      if (ec) return data;
      data.append(buf, n);
    }
  }
  std::string request(const std::string& method, const std::string& path, const std::string& body = "",
                      const std::string& extra_headers = "") {
    send(method + " " + path + " HTTP/1.1\r\nHost: x\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    return read_response();
  }
  bool closed_by_server() {
    char c;
    asio::error_code ec;
    socket_.read_some(asio::buffer(&c, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }
  asio::ip::tcp::socket& socket() { return socket_; }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  std::string leftover_;  // bytes of the next response
};

int status_of(const std::string& response) { return std::stoi(response.substr(9, 3)); }
json body_of(const std::string& response) { return json::parse(response.substr(response.find("\r\n\r\n") + 4)); }

// The text of every SSE data event of a chunked stream, in order.
std::vector<std::string> sse_events(const std::string& response) {
  std::string body = response.substr(response.find("\r\n\r\n") + 4), payload;
  for (size_t pos = 0;;) {  // undo chunked framing
    size_t eol = body.find("\r\n", pos);
    size_t len = std::stoul(body.substr(pos, eol - pos), nullptr, 16);
    if (len == 0) break;
    payload += body.substr(eol + 2, len);
    pos = eol + 2 + len + 2;
  }
  std::vector<std::string> events;
  for (size_t pos = 0; (pos = payload.find("data: ", pos)) != std::string::npos;) {
    size_t end = payload.find("\n\n", pos);
    events.push_back(payload.substr(pos + 6, end - pos - 6));
    pos = end;
  }
  return events;
}

TEST_CASE("completion returns the reversed prompt with usage") {
  Fixture f;
  Client c(f.server->port());
  std::string r = c.request("POST", "/v1/completions", R"({"model":"echo","prompt":"abcdef","max_tokens":4})");
  REQUIRE(status_of(r) == 200);
  json j = body_of(r);
  CHECK(j["object"] == "text_completion");
  CHECK(j["choices"][0]["text"] == "fedc");
  CHECK(j["choices"][0]["finish_reason"] == "length");
  CHECK(j["usage"]["prompt_tokens"] == 7);  // BOS + 6 bytes
  CHECK(j["usage"]["completion_tokens"] == 4);
  // Keep-alive: the same connection serves the next request.
  std::string r2 = c.request("GET", "/v1/models");
  CHECK(body_of(r2)["data"][0]["id"] == "echo");
}

TEST_CASE("stop strings cut the text and n gives n choices") {
  Fixture f;
  Client c(f.server->port());
  json j = body_of(c.request("POST", "/v1/completions",
                             R"({"prompt":"xyzSTOPabc","max_tokens":10,"stop":["OT"],"n":3})"));
  REQUIRE(j["choices"].size() == 3);
  for (const auto& ch : j["choices"]) {
    CHECK(ch["text"] == "cbaP");  // reversed: "cbaPOTSzyx", cut before "OT"
    CHECK(ch["finish_reason"] == "stop");
    CHECK(ch["stop_reason"] == "OT");
  }
}

TEST_CASE("stop_token_ids and eos end a choice with stop") {
  Fixture f;
  Client c(f.server->port());
  json j = body_of(c.request("POST", "/v1/completions", R"({"prompt":"abc","max_tokens":10,"stop_token_ids":[98]})"));
  CHECK(j["choices"][0]["text"] == "c");
  CHECK(j["choices"][0]["finish_reason"] == "stop");
  CHECK(j["choices"][0]["stop_reason"] == 98);
  json e = body_of(c.request("POST", "/v1/completions", R"({"prompt":[256,257,65,66],"max_tokens":10})"));
  CHECK(e["choices"][0]["text"] == "BA");
  CHECK(e["choices"][0]["finish_reason"] == "stop");
}

TEST_CASE("streaming chat sends role, deltas, usage and [DONE]") {
  Fixture f;
  Client c(f.server->port());
  std::string r = c.request("POST", "/v1/chat/completions",
                            R"({"messages":[{"role":"user","content":"hello"}],"stream":true,"max_tokens":5,
                                "stream_options":{"include_usage":true}})");
  REQUIRE(status_of(r) == 200);
  CHECK(r.find("text/event-stream") != std::string::npos);
  auto events = sse_events(r);
  REQUIRE(events.size() >= 4);
  CHECK(events.back() == "[DONE]");
  std::string text;
  json first = json::parse(events[0]);
  CHECK(first["choices"][0]["delta"]["role"] == "assistant");
  std::string finish;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    json e = json::parse(events[i]);
    CHECK(e["object"] == "chat.completion.chunk");
    text += e["choices"][0]["delta"].value("content", "");
    if (!e["choices"][0]["finish_reason"].is_null()) finish = e["choices"][0]["finish_reason"];
  }
  CHECK(text == "olleh");
  CHECK(finish == "length");
  json usage = json::parse(events[events.size() - 2]);
  CHECK(usage["choices"].empty());
  CHECK(usage["usage"]["completion_tokens"] == 5);
}

TEST_CASE("logprobs in completions and chat") {
  Fixture f;
  Client c(f.server->port());
  json j = body_of(c.request("POST", "/v1/completions", R"({"prompt":"ab","max_tokens":2,"logprobs":2})"));
  const json& lp = j["choices"][0]["logprobs"];
  CHECK(lp["tokens"] == json::array({"b", "a"}));
  CHECK(lp["token_logprobs"][1].get<double>() == doctest::Approx(-0.5));
  CHECK(lp["top_logprobs"][0].size() == 2);
  CHECK(lp["text_offset"] == json::array({0, 1}));
  json k = body_of(c.request("POST", "/v1/chat/completions",
                             R"({"messages":[{"role":"user","content":"ab"}],"max_tokens":1,"logprobs":true,"top_logprobs":1})"));
  CHECK(k["choices"][0]["logprobs"]["content"][0]["token"] == "b");
  CHECK(k["choices"][0]["logprobs"]["content"][0]["top_logprobs"].size() == 1);
}

TEST_CASE("errors: bad field, unknown model, context length, unknown route") {
  Fixture f;
  Client c(f.server->port());
  std::string r = c.request("POST", "/v1/completions", R"({"prompt":"a","temperature":-1})");
  CHECK(status_of(r) == 400);
  CHECK(body_of(r)["error"]["param"] == "temperature");
  CHECK(body_of(r)["error"]["type"] == "BadRequestError");
  CHECK(body_of(r)["error"]["code"] == 400);
  r = c.request("POST", "/v1/completions", R"({"prompt":"a","model":"gpt-9"})");
  CHECK(status_of(r) == 404);
  CHECK(body_of(r)["error"]["param"] == "model");
  r = c.request("POST", "/v1/completions", R"({"prompt":"abc","max_tokens":126})");
  CHECK(status_of(r) == 400);
  CHECK(body_of(r)["error"]["message"].get<std::string>().find("maximum context length is 128") != std::string::npos);
  r = c.request("POST", "/v1/completions", "{not json");
  CHECK(status_of(r) == 400);
  r = c.request("GET", "/nope");
  CHECK(status_of(r) == 404);
  // The connection survived all of them.
  CHECK(status_of(c.request("GET", "/health")) == 200);
}

TEST_CASE("--api-key guards /v1 only") {
  Fixture f("sekret");
  Client c(f.server->port());
  CHECK(status_of(c.request("GET", "/v1/models")) == 401);
  CHECK(status_of(c.request("GET", "/v1/models", "", "Authorization: Bearer wrong\r\n")) == 401);
  CHECK(status_of(c.request("GET", "/v1/models", "", "Authorization: Bearer sekret\r\n")) == 200);
  CHECK(status_of(c.request("GET", "/health")) == 200);
  CHECK(status_of(c.request("POST", "/tokenize", R"({"prompt":"hi"})")) == 200);
}

TEST_CASE("tokenize and detokenize") {
  Fixture f;
  Client c(f.server->port());
  json t = body_of(c.request("POST", "/tokenize", R"({"prompt":"hi"})"));
  CHECK(t["tokens"] == json::array({256, 104, 105}));
  CHECK(t["count"] == 3);
  json d = body_of(c.request("POST", "/detokenize", R"({"tokens":[104,105]})"));
  CHECK(d["prompt"] == "hi");
}

TEST_CASE("health is 503 while loading") {
  Fixture f;
  f.backend.set_state(BackendState::kLoading);
  Client c(f.server->port());
  CHECK(status_of(c.request("GET", "/health")) == 503);
  CHECK(status_of(c.request("POST", "/v1/completions", R"({"prompt":"a"})")) == 503);
}

TEST_CASE("garbage, oversized headers and bodies, and slow clients only hurt themselves") {
  Fixture f;
  Client good(f.server->port());
  Client garbage(f.server->port());
  garbage.send("\x16\x03\x01\x02garbage\r\n\r\n");
  std::string r = garbage.read_response();
  CHECK(status_of(r) == 400);
  CHECK(garbage.closed_by_server());

  Client big_body(f.server->port());
  big_body.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
  CHECK(status_of(big_body.read_response()) == 413);

  Client big_header(f.server->port());
  big_header.send("GET /health HTTP/1.1\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n");
  CHECK(status_of(big_header.read_response()) == 431);

  Client slow(f.server->port());
  slow.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Len");
  // Meanwhile others are served at once.
  CHECK(status_of(good.request("POST", "/v1/completions", R"({"prompt":"ok","max_tokens":2})")) == 200);
  std::string timed_out = slow.read_response();  // the request timeout (500 ms) ends it
  CHECK(status_of(timed_out) == 408);
  CHECK(status_of(good.request("GET", "/health")) == 200);
}

TEST_CASE("a client that disconnects mid-stream frees its blocks") {
  Fixture f("", std::chrono::milliseconds(20));
  {
    Client c(f.server->port());
    std::string body = R"({"prompt":"abcdefgh","max_tokens":110,"stream":true})";
    c.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body);
    std::string seen;
    char buf[256];
    while (seen.find("data: ") == std::string::npos) {  // the first token has arrived
      size_t n = c.socket().read_some(asio::buffer(buf));
      seen.append(buf, n);
    }
    CHECK(f.backend.stats().num_running == 1);
    CHECK(f.backend.stats().kv_cache_num_blocks_used > 0);
  }  // closes the socket
  for (int i = 0; i < 200 && f.backend.stats().num_running > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(f.backend.stats().num_running == 0);
  CHECK(f.backend.stats().kv_cache_num_blocks_used == 0);
  Client m(f.server->port());
  std::string metrics = m.request("GET", "/metrics");
  CHECK(metrics.find("llmctl:kv_cache_usage_perc{model_name=\"echo\"} 0\n") != std::string::npos);
  CHECK(metrics.find("llmctl:request_success_total{model_name=\"echo\",finished_reason=\"abort\"} 1") !=
        std::string::npos);
}

TEST_CASE("pipelined requests are answered in order") {
  Fixture f;
  Client c(f.server->port());
  std::string body = R"({"prompt":"12","max_tokens":2})";
  std::string one = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\n\r\n" + body;
  c.send(one + "GET /version HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(body_of(c.read_response())["choices"][0]["text"] == "21");
  CHECK(body_of(c.read_response()).contains("version"));
}

}  // namespace
}  // namespace llmctl::server
