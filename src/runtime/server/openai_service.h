// OpenAiService: the routes of vLLM's OpenAI-compatible server over a
// GenerationBackend and a TextCodec. An HttpHandler: every method runs on the
// one io thread; backend events are posted back to it (see generation_call.h).
//
//   POST /v1/completions, /v1/chat/completions (stream or not)
//   GET  /v1/models, /health, /version, /metrics
//   POST /tokenize, /detokenize
// --api-key guards /v1/* only, as in vLLM.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <asio.hpp>

#include "runtime/server/generation_backend.h"
#include "runtime/server/http_message.h"
#include "runtime/server/server_metrics.h"
#include "runtime/server/text_codec.h"

namespace llmctl::server {

struct OpenAiServiceOptions {
  std::string served_model_name = "model";
  std::string model_root;  // the folder, shown as "root" in /v1/models
  std::string api_key;     // empty: no authentication
  int max_model_len = 4096;
  int max_logprobs = 20;
  std::string version = "0";
};

class OpenAiService final : public HttpHandler {
 public:
  OpenAiService(asio::io_context& io, OpenAiServiceOptions options, const TextCodec& codec,
                GenerationBackend& backend);
  void handle(std::shared_ptr<HttpExchange> exchange) override;
  // Once the engine knows it (io thread).
  void set_max_model_len(int max_model_len) { options_.max_model_len = max_model_len; }

  // Shared with the GenerationCalls (io thread).
  asio::io_context& io() { return io_; }
  const OpenAiServiceOptions& options() const { return options_; }
  const TextCodec& codec() const { return codec_; }
  GenerationBackend& backend() { return backend_; }
  ServerMetrics& metrics() { return metrics_; }
  uint64_t next_request_id() { return next_request_id_++; }

 private:
  void generate(const std::shared_ptr<HttpExchange>& exchange, bool chat);
  void tokenize(const std::shared_ptr<HttpExchange>& exchange);
  void detokenize(const std::shared_ptr<HttpExchange>& exchange);
  HttpResponse models() const;

  asio::io_context& io_;
  OpenAiServiceOptions options_;
  const TextCodec& codec_;
  GenerationBackend& backend_;
  ServerMetrics metrics_;
  uint64_t next_request_id_ = 1;
  int64_t created_ = 0;
};

}  // namespace llmctl::server
