// GenerationCall: one /v1/completions or /v1/chat/completions request in
// flight: its choices (one backend request each), their detokenizers and stop
// string checks, and the JSON or SSE it writes. Lives on the io thread; kept
// alive by the backend sinks (each posts its events to the io thread) until
// every choice has its final event.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/server/generation_backend.h"
#include "runtime/server/http_message.h"
#include "runtime/server/openai_request.h"
#include "runtime/server/text_codec.h"

namespace llmctl::server {

class OpenAiService;

class GenerationCall : public std::enable_shared_from_this<GenerationCall> {
 public:
  // prompts: the token ids of each prompt (n choices each).
  GenerationCall(OpenAiService& service, std::shared_ptr<HttpExchange> exchange, OpenAiRequest request,
                 std::vector<std::vector<int32_t>> prompts, std::vector<std::string> prompt_texts);
  // Submits every choice. On a refused submission answers 400 itself.
  void start();

 private:
  struct Choice {
    int index = 0;
    uint64_t request_id = 0;
    std::unique_ptr<StreamDecoder> decoder;
    std::string text;          // all text so far (stop string cut)
    size_t emitted = 0;        // bytes of text already streamed
    int num_tokens = 0;
    std::vector<TokenLogprob> logprobs;  // all (non-stream) or not yet sent (stream)
    std::vector<int32_t> logprob_prev_ids;  // per logprobs entry: the token before it
    int32_t last_token_id = -1;             // the prompt's last, then the last generated
    int text_offset = 0;
    bool done = false;
    bool cancelled_by_stop = false;
    std::string finish_reason;
    nlohmann::json stop_reason = nullptr;
    std::chrono::steady_clock::time_point last_token_time;
    bool sent_role = false;
  };

  void on_event(size_t choice, GenerationEvent event);
  void on_client_gone();
  bool check_stop_strings(Choice& c, size_t search_from);
  size_t releasable(const Choice& c) const;
  void stream_update(Choice& c, bool final);
  void finish_all();
  // The engine failed this request (a dead rank, a failed step): the whole
  // call ends with a 500 naming the cause, or, once streaming, an SSE error
  // event and [DONE].
  void fail(const std::string& error);
  nlohmann::json chunk_base() const;
  nlohmann::json logprobs_json(Choice& c);
  std::string token_text(int32_t prev_id, int32_t id) const;

  OpenAiService& service_;
  std::shared_ptr<HttpExchange> exchange_;
  OpenAiRequest req_;
  std::vector<std::vector<int32_t>> prompts_;
  std::vector<std::string> prompt_texts_;
  std::vector<Choice> choices_;
  std::string id_;
  int64_t created_ = 0;
  size_t max_stop_len_ = 0;
  int num_done_ = 0;
  int num_prompt_tokens_ = 0;
  bool first_token_seen_ = false;
  bool client_gone_ = false;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_time_;
};

}  // namespace llmctl::server
