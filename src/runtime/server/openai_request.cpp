#include "runtime/server/openai_request.h"

#include <algorithm>

#include <fmt/format.h>

namespace llmctl::server {
namespace {

using json = nlohmann::json;

struct Reader {
  const json& body;
  std::optional<RequestError> error;

  const json* get(const char* key) {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) return nullptr;
    return &*it;
  }
  void fail(std::string param, std::string message) {
    if (!error) error = RequestError{std::move(message), std::move(param)};
  }
  void number(const char* key, double* out, double lo, double hi, const char* range_text) {
    const json* v = get(key);
    if (v == nullptr) return;
    if (!v->is_number()) return fail(key, fmt::format("{} must be a number", key));
    double x = v->get<double>();
    if (!(x >= lo && x <= hi)) return fail(key, fmt::format("{} must be {}, got {}", key, range_text, x));
    *out = x;
  }
  bool integer(const char* key, int* out, long long lo, long long hi) {
    const json* v = get(key);
    if (v == nullptr) return false;
    if (!v->is_number_integer()) {
      fail(key, fmt::format("{} must be an integer", key));
      return false;
    }
    long long x = v->get<long long>();
    if (x < lo || x > hi) {
      fail(key, fmt::format("{} must be between {} and {}, got {}", key, lo, hi, x));
      return false;
    }
    *out = static_cast<int>(x);
    return true;
  }
  void boolean(const char* key, bool* out) {
    const json* v = get(key);
    if (v == nullptr) return;
    if (!v->is_boolean()) return fail(key, fmt::format("{} must be a boolean", key));
    *out = v->get<bool>();
  }
};

bool is_id_list(const json& v) {
  if (!v.is_array() || v.empty()) return false;
  for (const auto& x : v) {
    if (!x.is_number_integer()) return false;
  }
  return true;
}

}  // namespace

std::optional<RequestError> parse_openai_request(const std::string& body, bool chat, int max_logprobs,
                                                 OpenAiRequest* out) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return RequestError{"request body is not valid JSON", ""};
  if (!j.is_object()) return RequestError{"request body must be a JSON object", ""};
  OpenAiRequest& r = *out;
  r.chat = chat;
  Reader rd{j, std::nullopt};

  if (const json* m = rd.get("model")) {
    if (!m->is_string()) return RequestError{"model must be a string", "model"};
    r.model = m->get<std::string>();
  }
  if (chat) {
    const json* msgs = rd.get("messages");
    if (msgs == nullptr) return RequestError{"messages is required", "messages"};
    if (!msgs->is_array() || msgs->empty()) return RequestError{"messages must be a non-empty list", "messages"};
    for (const auto& m : *msgs) {
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
        return RequestError{"each message must be an object with a string role", "messages"};
      }
    }
    r.messages = *msgs;
    rd.boolean("add_generation_prompt", &r.add_generation_prompt);
    if (const json* k = rd.get("chat_template_kwargs")) {
      if (!k->is_object()) return RequestError{"chat_template_kwargs must be an object", "chat_template_kwargs"};
      r.chat_template_kwargs = *k;
    }
  } else {
    const json* p = rd.get("prompt");
    if (p == nullptr) return RequestError{"prompt is required", "prompt"};
    if (p->is_string()) {
      r.prompt_texts.push_back(p->get<std::string>());
    } else if (is_id_list(*p)) {
      r.prompt_ids.push_back(p->get<std::vector<int32_t>>());
    } else if (p->is_array() && !p->empty()) {
      for (const auto& e : *p) {
        if (e.is_string()) {
          r.prompt_texts.push_back(e.get<std::string>());
        } else if (is_id_list(e)) {
          r.prompt_ids.push_back(e.get<std::vector<int32_t>>());
        } else {
          return RequestError{"prompt must be a string, a list of strings, a list of token ids or a list of lists",
                              "prompt"};
        }
      }
      if (!r.prompt_texts.empty() && !r.prompt_ids.empty()) {
        return RequestError{"prompt must not mix strings and token ids", "prompt"};
      }
    } else {
      return RequestError{"prompt must be a string, a list of strings, a list of token ids or a list of lists",
                          "prompt"};
    }
    rd.boolean("echo", &r.echo);
  }

  rd.boolean("stream", &r.stream);
  if (const json* so = rd.get("stream_options")) {
    if (!so->is_object()) return RequestError{"stream_options must be an object", "stream_options"};
    if (!r.stream) return RequestError{"stream_options is only allowed when stream is true", "stream_options"};
    auto it = so->find("include_usage");
    if (it != so->end() && !it->is_null()) {
      if (!it->is_boolean()) return RequestError{"stream_options.include_usage must be a boolean", "stream_options"};
      r.include_usage = it->get<bool>();
    }
  }
  rd.integer("n", &r.n, 1, 128);
  SamplingOptions& s = r.sampling;
  rd.number("temperature", &s.temperature, 0, 1e6, "at least 0");
  rd.number("top_p", &s.top_p, 1e-9, 1, "in (0, 1]");
  if (rd.integer("top_k", &s.top_k, -1, 1 << 30) && s.top_k == 0) s.top_k = -1;
  rd.number("min_p", &s.min_p, 0, 1, "in [0, 1]");
  rd.number("presence_penalty", &s.presence_penalty, -2, 2, "in [-2, 2]");
  rd.number("frequency_penalty", &s.frequency_penalty, -2, 2, "in [-2, 2]");
  rd.number("repetition_penalty", &s.repetition_penalty, 1e-9, 1e6, "greater than 0");
  if (const json* seed = rd.get("seed")) {
    if (!seed->is_number_integer()) return RequestError{"seed must be an integer", "seed"};
    s.seed = static_cast<uint64_t>(seed->get<long long>());
  }
  // vLLM takes max_completion_tokens (the newer name) over max_tokens.
  int max_tokens = 0;
  if (rd.integer("max_completion_tokens", &max_tokens, 1, 1 << 30) ||
      rd.integer("max_tokens", &max_tokens, 1, 1 << 30)) {
    s.max_tokens = max_tokens;
    r.max_tokens_given = true;
  }
  rd.integer("min_tokens", &s.min_tokens, 0, 1 << 30);
  if (!rd.error && r.max_tokens_given && s.min_tokens > s.max_tokens) {
    rd.fail("min_tokens", fmt::format("min_tokens ({}) must not exceed max_tokens ({})", s.min_tokens, s.max_tokens));
  }
  rd.boolean("ignore_eos", &s.ignore_eos);
  rd.boolean("skip_special_tokens", &r.skip_special_tokens);
  rd.boolean("include_stop_str_in_output", &r.include_stop_str_in_output);
  if (const json* stop = rd.get("stop")) {
    if (stop->is_string()) {
      if (!stop->get<std::string>().empty()) r.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      for (const auto& e : *stop) {
        if (!e.is_string()) return RequestError{"stop must be a string or a list of strings", "stop"};
        if (!e.get<std::string>().empty()) r.stop.push_back(e.get<std::string>());
      }
    } else {
      return RequestError{"stop must be a string or a list of strings", "stop"};
    }
  }
  if (const json* ids = rd.get("stop_token_ids")) {
    if (!ids->is_array() || !std::all_of(ids->begin(), ids->end(), [](const json& x) { return x.is_number_integer(); })) {
      return RequestError{"stop_token_ids must be a list of integers", "stop_token_ids"};
    }
    s.stop_token_ids = ids->get<std::vector<int32_t>>();
  }
  if (chat) {
    rd.boolean("logprobs", &r.logprobs);
    int top = 0;
    if (rd.integer("top_logprobs", &top, 0, max_logprobs)) {
      if (!r.logprobs) rd.fail("top_logprobs", "top_logprobs requires logprobs to be true");
    }
    if (r.logprobs) s.logprobs = top;
  } else {
    int lp = 0;
    if (const json* v = rd.get("logprobs"); v != nullptr && v->is_boolean()) {
      rd.fail("logprobs", "logprobs must be an integer for completions");
    } else if (rd.integer("logprobs", &lp, 0, max_logprobs)) {
      r.logprobs = true;
      s.logprobs = lp;
    }
    if (r.echo && r.logprobs) rd.fail("echo", "echo together with logprobs is not supported");
  }
  if (const json* u = rd.get("user"); u != nullptr && !u->is_string()) rd.fail("user", "user must be a string");
  if (rd.error) return rd.error;
  return std::nullopt;
}

}  // namespace llmctl::server
