// The body of POST /v1/completions and /v1/chat/completions, parsed and
// checked the way vLLM's OpenAI server accepts it (its extras included).
// Errors are INVALID_ARGUMENT with the field name in ParsedError::param.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "runtime/server/generation_backend.h"

namespace llmctl::server {

struct OpenAiRequest {
  bool chat = false;
  std::string model;  // empty: the served model
  // Completions: one entry per prompt (text or ids). Chat: the messages.
  std::vector<std::string> prompt_texts;
  std::vector<std::vector<int32_t>> prompt_ids;  // used instead of texts when non-empty
  nlohmann::json messages;
  bool add_generation_prompt = true;
  nlohmann::json chat_template_kwargs = nlohmann::json::object();
  bool stream = false;
  bool include_usage = false;
  int n = 1;
  SamplingOptions sampling;
  bool max_tokens_given = false;
  std::vector<std::string> stop;
  bool include_stop_str_in_output = false;
  bool echo = false;
  bool skip_special_tokens = true;
  bool logprobs = false;  // report logprobs (count in sampling.logprobs)
};

struct RequestError {
  std::string message;
  std::string param;
};

// max_logprobs: the most top logprobs a request may ask for (vLLM's default 20).
std::optional<RequestError> parse_openai_request(const std::string& body, bool chat, int max_logprobs,
                                                 OpenAiRequest* out);

}  // namespace llmctl::server
