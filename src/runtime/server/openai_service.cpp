#include "runtime/server/openai_service.h"

#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/logging.h"
#include "runtime/server/api_error.h"
#include "runtime/server/generation_call.h"
#include "runtime/server/openai_request.h"

namespace llmctl::server {
namespace {

using json = nlohmann::json;

// /health's and a refused request's 503: loading, or dead and why when known.
std::string not_ready_message(const GenerationBackend& backend) {
  if (backend.state() == BackendState::kLoading) return "the model is still loading";
  std::string why = backend.failure();
  return why.empty() ? "the engine has died" : "the engine has died: " + why;
}

HttpResponse json_response(const json& j, int status = 200) {
  HttpResponse r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

// Compares in time independent of where the first difference is.
bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

OpenAiService::OpenAiService(asio::io_context& io, OpenAiServiceOptions options, const TextCodec& codec,
                             GenerationBackend& backend)
    : io_(io), options_(std::move(options)), codec_(codec), backend_(backend),
      created_(static_cast<int64_t>(std::time(nullptr))) {}

void OpenAiService::handle(std::shared_ptr<HttpExchange> exchange) {
  const HttpRequest& req = exchange->request();
  const std::string& path = req.path;
  const bool is_get = req.method == "GET";
  const bool is_post = req.method == "POST";

  if (path.rfind("/v1/", 0) == 0 && !options_.api_key.empty()) {
    std::string_view auth = req.header("authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (auth.substr(0, kBearer.size()) != kBearer || !same_secret(auth.substr(kBearer.size()), options_.api_key)) {
      exchange->respond(error_response(401, "Unauthorized: a valid API key is required (Authorization: Bearer KEY)",
                                       "", ""));
      return;
    }
  }
  auto method_not_allowed = [&] { exchange->respond(error_response(405, "Method Not Allowed", "", "")); };

  if (path == "/health") {
    if (!is_get) return method_not_allowed();
    BackendState s = backend_.state();
    HttpResponse r;
    r.content_type.clear();
    if (s != BackendState::kReady) {
      r = error_response(503, not_ready_message(backend_), "", "");
    }
    exchange->respond(std::move(r));
  } else if (path == "/version") {
    if (!is_get) return method_not_allowed();
    exchange->respond(json_response({{"version", options_.version}}));
  } else if (path == "/metrics") {
    if (!is_get) return method_not_allowed();
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics_.render(options_.served_model_name, backend_.stats());
    exchange->respond(std::move(r));
  } else if (path == "/v1/models") {
    if (!is_get) return method_not_allowed();
    exchange->respond(models());
  } else if (path == "/v1/completions" || path == "/v1/chat/completions") {
    if (!is_post) return method_not_allowed();
    generate(exchange, path == "/v1/chat/completions");
  } else if (path == "/tokenize") {
    if (!is_post) return method_not_allowed();
    tokenize(exchange);
  } else if (path == "/detokenize") {
    if (!is_post) return method_not_allowed();
    detokenize(exchange);
  } else {
    exchange->respond(error_response(404, fmt::format("no route for {} {}", req.method, path), "", ""));
  }
}

HttpResponse OpenAiService::models() const {
  json model = {{"id", options_.served_model_name},
                {"object", "model"},
                {"created", created_},
                {"owned_by", "llmctl"},
                {"root", options_.model_root.empty() ? options_.served_model_name : options_.model_root},
                {"parent", nullptr},
                {"max_model_len", options_.max_model_len}};
  return json_response({{"object", "list"}, {"data", json::array({model})}});
}

void OpenAiService::generate(const std::shared_ptr<HttpExchange>& exchange, bool chat) {
  BackendState state = backend_.state();
  if (state != BackendState::kReady) {
    exchange->respond(error_response(503, not_ready_message(backend_), "", ""));
    return;
  }
  OpenAiRequest req;
  if (auto err = parse_openai_request(exchange->request().body, chat, options_.max_logprobs, &req)) {
    exchange->respond(error_response(400, err->message, err->param, ""));
    return;
  }
  if (!req.model.empty() && req.model != options_.served_model_name) {
    exchange->respond(error_response(404, fmt::format("The model `{}` does not exist.", req.model), "model",
                                     "NotFoundError"));
    return;
  }
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::string> texts;
  if (chat) {
    Result<std::string> rendered = codec_.render_chat(req.messages, req.add_generation_prompt, req.chat_template_kwargs);
    if (!rendered.is_ok()) {
      exchange->respond(error_response(400, rendered.status().message(), "messages", ""));
      return;
    }
    prompts.push_back(codec_.encode(*rendered, !codec_.chat_adds_bos()));
    texts.push_back(*rendered);
  } else if (!req.prompt_ids.empty()) {
    for (auto& ids : req.prompt_ids) {
      for (int32_t id : ids) {
        if (id < 0 || id >= codec_.vocab_size()) {
          exchange->respond(error_response(400, fmt::format("token id {} is out of vocabulary", id), "prompt", ""));
          return;
        }
      }
      texts.push_back(codec_.decode(ids, false));
      prompts.push_back(std::move(ids));
    }
  } else {
    for (auto& t : req.prompt_texts) {
      prompts.push_back(codec_.encode(t, true));
      texts.push_back(std::move(t));
    }
  }
  const int max_len = options_.max_model_len;
  for (const auto& p : prompts) {
    const int prompt_len = static_cast<int>(p.size());
    if (prompt_len == 0) {
      exchange->respond(error_response(400, "the prompt is empty", chat ? "messages" : "prompt", ""));
      return;
    }
    if (!req.max_tokens_given && chat) req.sampling.max_tokens = std::max(1, max_len - prompt_len);
    if (prompt_len >= max_len || prompt_len + req.sampling.max_tokens > max_len) {
      exchange->respond(error_response(
          400,
          fmt::format("This model's maximum context length is {} tokens. However, you requested {} tokens ({} in the "
                      "{}, {} for the completion). Please reduce the length of the {} or completion.",
                      max_len, prompt_len + req.sampling.max_tokens, prompt_len, chat ? "messages" : "prompt",
                      req.sampling.max_tokens, chat ? "messages" : "prompt"),
          prompt_len >= max_len ? (chat ? "messages" : "prompt") : "max_tokens", ""));
      return;
    }
  }
  auto call = std::make_shared<GenerationCall>(*this, exchange, std::move(req), std::move(prompts), std::move(texts));
  call->start();
}

void OpenAiService::tokenize(const std::shared_ptr<HttpExchange>& exchange) {
  json body = json::parse(exchange->request().body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    exchange->respond(error_response(400, "request body must be a JSON object", "", ""));
    return;
  }
  if (body.contains("model") && body["model"].is_string() && body["model"] != options_.served_model_name) {
    exchange->respond(error_response(404, fmt::format("The model `{}` does not exist.", body["model"].get<std::string>()),
                                     "model", "NotFoundError"));
    return;
  }
  bool add_special = body.value("add_special_tokens", true);
  std::vector<int32_t> ids;
  if (body.contains("messages")) {
    Result<std::string> text =
        codec_.render_chat(body["messages"], body.value("add_generation_prompt", true), json::object());
    if (!text.is_ok()) {
      exchange->respond(error_response(400, text.status().message(), "messages", ""));
      return;
    }
    ids = codec_.encode(*text, body.value("add_special_tokens", !codec_.chat_adds_bos()));
  } else if (body.contains("prompt") && body["prompt"].is_string()) {
    ids = codec_.encode(body["prompt"].get<std::string>(), add_special);
  } else {
    exchange->respond(error_response(400, "prompt (a string) or messages is required", "prompt", ""));
    return;
  }
  exchange->respond(json_response({{"count", ids.size()},
                                   {"max_model_len", options_.max_model_len},
                                   {"tokens", ids},
                                   {"token_strs", nullptr}}));
}

void OpenAiService::detokenize(const std::shared_ptr<HttpExchange>& exchange) {
  json body = json::parse(exchange->request().body, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("tokens") || !body["tokens"].is_array()) {
    exchange->respond(error_response(400, "tokens (a list of token ids) is required", "tokens", ""));
    return;
  }
  std::vector<int32_t> ids;
  for (const auto& t : body["tokens"]) {
    if (!t.is_number_integer() || t.get<long long>() < 0 || t.get<long long>() >= codec_.vocab_size()) {
      exchange->respond(error_response(400, fmt::format("tokens: {} is not a token id of this model", t.dump()),
                                       "tokens", ""));
      return;
    }
    ids.push_back(t.get<int32_t>());
  }
  exchange->respond(json_response({{"prompt", codec_.decode(ids, false)}}));
}

}  // namespace llmctl::server
