#include "runtime/server/generation_call.h"

#include <algorithm>
#include <ctime>

#include <fmt/format.h>

#include "runtime/server/api_error.h"
#include "runtime/server/openai_service.h"

namespace llmctl::server {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json bytes_of(const std::string& s) {
  json out = json::array();
  for (unsigned char ch : s) out.push_back(static_cast<int>(ch));
  return out;
}

}  // namespace

GenerationCall::GenerationCall(OpenAiService& service, std::shared_ptr<HttpExchange> exchange, OpenAiRequest request,
                               std::vector<std::vector<int32_t>> prompts, std::vector<std::string> prompt_texts)
    : service_(service),
      exchange_(std::move(exchange)),
      req_(std::move(request)),
      prompts_(std::move(prompts)),
      prompt_texts_(std::move(prompt_texts)) {}

void GenerationCall::start() {
  start_time_ = Clock::now();
  created_ = static_cast<int64_t>(std::time(nullptr));
  uint64_t first_id = service_.next_request_id();
  id_ = fmt::format("{}-{:016x}{:08x}", req_.chat ? "chatcmpl" : "cmpl", first_id, static_cast<uint32_t>(created_));
  for (const auto& s : req_.stop) max_stop_len_ = std::max(max_stop_len_, s.size());
  for (const auto& p : prompts_) num_prompt_tokens_ += static_cast<int>(p.size());

  size_t num_choices = prompts_.size() * static_cast<size_t>(req_.n);
  choices_.resize(num_choices);
  std::vector<uint64_t> submitted;
  for (size_t i = 0; i < num_choices; ++i) {
    Choice& c = choices_[i];
    c.index = static_cast<int>(i);
    c.request_id = i == 0 ? first_id : service_.next_request_id();
    c.decoder = service_.codec().stream_decoder(req_.skip_special_tokens);
    const std::vector<int32_t>& prompt = prompts_[i / req_.n];
    c.last_token_id = prompt.empty() ? -1 : prompt.back();
    if (req_.echo && !req_.chat) {
      c.text = prompt_texts_[i / req_.n];
      c.text_offset = static_cast<int>(c.text.size());
    }
  }
  for (size_t i = 0; i < num_choices; ++i) {
    GenerationRequest g;
    g.request_id = choices_[i].request_id;
    g.prompt_ids = prompts_[i / req_.n];
    g.sampling = req_.sampling;
    int j = static_cast<int>(i % req_.n);
    if (g.sampling.seed) g.sampling.seed = *g.sampling.seed + static_cast<uint64_t>(j);
    asio::io_context& io = service_.io();
    auto self = shared_from_this();
    EventSink sink = [self, i, &io](GenerationEvent event) {
      asio::post(io, [self, i, event = std::move(event)]() mutable { self->on_event(i, std::move(event)); });
    };
    Status st = service_.backend().submit(std::move(g), std::move(sink));
    if (!st.is_ok()) {
      for (uint64_t id : submitted) service_.backend().cancel(id);
      for (Choice& c : choices_) c.done = true;
      finished_ = true;
      exchange_->respond(error_response(http_status_for(st), st.message(), "", ""));
      return;
    }
    submitted.push_back(choices_[i].request_id);
  }
  service_.metrics().add_prompt_tokens(num_prompt_tokens_);

  std::weak_ptr<GenerationCall> weak = shared_from_this();
  exchange_->on_close([weak] {
    if (auto self = weak.lock()) self->on_client_gone();
  });
  if (req_.stream) {
    exchange_->start_stream(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
    for (Choice& c : choices_) {
      json chunk = chunk_base();
      if (req_.chat) {
        chunk["choices"] = json::array({{{"index", c.index},
                                         {"delta", {{"role", "assistant"}, {"content", ""}}},
                                         {"logprobs", nullptr},
                                         {"finish_reason", nullptr}}});
        exchange_->send_chunk("data: " + dump(chunk) + "\n\n");
      } else if (!c.text.empty()) {  // echo: the prompt comes first
        stream_update(c, false);
      }
    }
  }
}

json GenerationCall::chunk_base() const {
  return {{"id", id_},
          {"object", req_.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", created_},
          {"model", service_.options().served_model_name}};
}

void GenerationCall::on_client_gone() {
  if (finished_) return;
  client_gone_ = true;
  for (Choice& c : choices_) {
    if (!c.done) service_.backend().cancel(c.request_id);
  }
}

bool GenerationCall::check_stop_strings(Choice& c, size_t search_from) {
  size_t best = std::string::npos;
  const std::string* hit = nullptr;
  for (const auto& s : req_.stop) {
    size_t pos = c.text.find(s, search_from);
    if (pos != std::string::npos && pos < best) {
      best = pos;
      hit = &s;
    }
  }
  if (hit == nullptr) return false;
  c.text.resize(req_.include_stop_str_in_output ? best + hit->size() : best);
  c.emitted = std::min(c.emitted, c.text.size());
  c.finish_reason = "stop";
  c.stop_reason = *hit;
  return true;
}

size_t GenerationCall::releasable(const Choice& c) const {
  // Hold back what could still become the start of a stop string.
  size_t hold = max_stop_len_ > 0 ? max_stop_len_ - 1 : 0;
  size_t pos = c.text.size() > hold ? c.text.size() - hold : 0;
  while (pos > c.emitted && pos < c.text.size() && (static_cast<unsigned char>(c.text[pos]) & 0xC0) == 0x80) --pos;
  return std::max(pos, c.emitted);
}

void GenerationCall::on_event(size_t index, GenerationEvent event) {
  Choice& c = choices_[index];
  if (c.done) return;  // e.g. the abort that follows a stop string
  if (event.finish_reason == FinishReason::kError) return fail(event.error);
  Clock::time_point now = Clock::now();
  ServerMetrics& metrics = service_.metrics();
  const bool stop_strings_active = !req_.stop.empty();
  for (size_t t = 0; t < event.new_token_ids.size() && !c.done; ++t) {
    int32_t id = event.new_token_ids[t];
    if (!first_token_seen_) {
      metrics.ttft().observe(seconds_between(start_time_, now));
      first_token_seen_ = true;
    } else if (c.num_tokens > 0) {
      metrics.itl().observe(seconds_between(c.last_token_time, now));
    }
    c.last_token_time = now;
    ++c.num_tokens;
    metrics.add_generation_tokens(1);
    if (t < event.logprobs.size()) {
      c.logprobs.push_back(event.logprobs[t]);
      c.logprob_prev_ids.push_back(c.last_token_id);
    }
    c.last_token_id = id;
    bool is_stop_token = event.finish_reason == FinishReason::kStop && event.stop_token_id &&
                         *event.stop_token_id == id && t + 1 == event.new_token_ids.size();
    if (is_stop_token && !req_.include_stop_str_in_output) continue;
    size_t old_size = c.text.size();
    c.text += c.decoder->push(id);
    if (stop_strings_active && c.num_tokens >= req_.sampling.min_tokens && c.text.size() > old_size) {
      size_t from = old_size >= max_stop_len_ ? old_size - max_stop_len_ + 1 : 0;
      if (check_stop_strings(c, from)) {
        c.done = true;
        service_.backend().cancel(c.request_id);
      }
    }
  }
  if (!c.done && event.finish_reason != FinishReason::kNone) {
    size_t old_size = c.text.size();
    c.text += c.decoder->finish();
    c.done = true;
    if (!(stop_strings_active && c.text.size() > old_size &&
          check_stop_strings(c, old_size >= max_stop_len_ ? old_size - max_stop_len_ + 1 : 0))) {
      c.finish_reason = std::string(finish_reason_name(event.finish_reason));
      if (event.stop_token_id) {
        const auto& ids = req_.sampling.stop_token_ids;
        if (std::find(ids.begin(), ids.end(), *event.stop_token_id) != ids.end()) c.stop_reason = *event.stop_token_id;
      }
    }
  }
  if (req_.stream && !client_gone_) stream_update(c, c.done);
  if (c.done && ++num_done_ == static_cast<int>(choices_.size())) finish_all();
}

std::string GenerationCall::token_text(int32_t prev_id, int32_t id) const {
  // A token's text depends on the one before it (SentencePiece drops a word's
  // leading space at the start of a decode), so decode it after its
  // predecessor, as the text itself was decoded; then the tokens of a choice
  // concatenate to its text, as in vLLM.
  const TextCodec& codec = service_.codec();
  const int32_t pair[2] = {prev_id, id};
  if (prev_id >= 0) {
    std::string before = codec.decode(std::span<const int32_t>(pair, 1), false);
    std::string both = codec.decode(std::span<const int32_t>(pair, 2), false);
    if (both.compare(0, before.size(), before) == 0) return both.substr(before.size());
  }
  return codec.decode(std::span<const int32_t>(pair + 1, 1), false);
}

json GenerationCall::logprobs_json(Choice& c) {
  const std::vector<TokenLogprob>& entries = c.logprobs;
  if (req_.chat) {
    json content = json::array();
    for (size_t i = 0; i < entries.size(); ++i) {
      const TokenLogprob& e = entries[i];
      const int32_t prev = c.logprob_prev_ids[i];
      std::string tok = token_text(prev, e.token_id);
      json top = json::array();
      for (const auto& [id, lp] : e.top) {
        std::string t = token_text(prev, id);
        top.push_back({{"token", t}, {"logprob", lp}, {"bytes", bytes_of(t)}});
      }
      content.push_back({{"token", tok}, {"logprob", e.logprob}, {"bytes", bytes_of(tok)}, {"top_logprobs", top}});
    }
    return {{"content", content}};
  }
  json tokens = json::array(), token_logprobs = json::array(), top_logprobs = json::array(), offsets = json::array();
  for (size_t i = 0; i < entries.size(); ++i) {
    const TokenLogprob& e = entries[i];
    const int32_t prev = c.logprob_prev_ids[i];
    std::string tok = token_text(prev, e.token_id);
    tokens.push_back(tok);
    token_logprobs.push_back(e.logprob);
    json top = json::object();
    for (const auto& [id, lp] : e.top) top[token_text(prev, id)] = lp;
    top_logprobs.push_back(top);
    offsets.push_back(c.text_offset);
    c.text_offset += static_cast<int>(tok.size());
  }
  return {{"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top_logprobs},
          {"text_offset", offsets}};
}

void GenerationCall::stream_update(Choice& c, bool final) {
  size_t release = final ? c.text.size() : releasable(c);
  std::string delta = c.text.substr(c.emitted, release - c.emitted);
  c.emitted = release;
  bool has_logprobs = req_.logprobs && !c.logprobs.empty();
  if (delta.empty() && !has_logprobs && !final) return;
  json lp = req_.logprobs ? logprobs_json(c) : json(nullptr);
  c.logprobs.clear();
  c.logprob_prev_ids.clear();
  json choice;
  if (req_.chat) {
    json d = json::object();
    if (!delta.empty() || !final) d["content"] = delta;
    choice = {{"index", c.index}, {"delta", d}, {"logprobs", lp},
              {"finish_reason", final ? json(c.finish_reason) : json(nullptr)}};
  } else {
    choice = {{"index", c.index}, {"text", delta}, {"logprobs", lp},
              {"finish_reason", final ? json(c.finish_reason) : json(nullptr)}};
  }
  if (final) choice["stop_reason"] = c.stop_reason;
  json chunk = chunk_base();
  chunk["choices"] = json::array({choice});
  exchange_->send_chunk("data: " + dump(chunk) + "\n\n");
}

void GenerationCall::fail(const std::string& error) {
  if (finished_) return;
  finished_ = true;
  for (Choice& c : choices_) {
    if (!c.done) service_.backend().cancel(c.request_id);
    c.done = true;
  }
  service_.metrics().request_finished("error");
  if (client_gone_ || exchange_->closed()) return;
  if (req_.stream) {
    exchange_->send_chunk("data: " + error_json(500, error, "", "") + "\n\n");
    exchange_->send_chunk("data: [DONE]\n\n");
    exchange_->end_stream();
  } else {
    exchange_->respond(error_response(500, error, "", ""));
  }
}

void GenerationCall::finish_all() {
  if (finished_) return;
  finished_ = true;
  ServerMetrics& metrics = service_.metrics();
  metrics.e2e().observe(seconds_between(start_time_, Clock::now()));
  metrics.request_finished(client_gone_ ? "abort" : choices_[0].finish_reason);
  if (client_gone_ || exchange_->closed()) return;
  int completion_tokens = 0;
  for (const Choice& c : choices_) completion_tokens += c.num_tokens;
  json usage = {{"prompt_tokens", num_prompt_tokens_},
                {"completion_tokens", completion_tokens},
                {"total_tokens", num_prompt_tokens_ + completion_tokens}};
  if (req_.stream) {
    if (req_.include_usage) {
      json chunk = chunk_base();
      chunk["choices"] = json::array();
      chunk["usage"] = usage;
      exchange_->send_chunk("data: " + dump(chunk) + "\n\n");
    }
    exchange_->send_chunk("data: [DONE]\n\n");
    exchange_->end_stream();
    return;
  }
  json choices = json::array();
  for (Choice& c : choices_) {
    json lp = req_.logprobs ? logprobs_json(c) : json(nullptr);
    if (req_.chat) {
      choices.push_back({{"index", c.index},
                         {"message", {{"role", "assistant"}, {"content", c.text}}},
                         {"logprobs", lp},
                         {"finish_reason", c.finish_reason},
                         {"stop_reason", c.stop_reason}});
    } else {
      choices.push_back({{"index", c.index},
                         {"text", c.text},
                         {"logprobs", lp},
                         {"finish_reason", c.finish_reason},
                         {"stop_reason", c.stop_reason}});
    }
  }
  json body = {{"id", id_},
               {"object", req_.chat ? "chat.completion" : "text_completion"},
               {"created", created_},
               {"model", service_.options().served_model_name},
               {"choices", choices},
               {"usage", usage}};
  HttpResponse r;
  r.body = dump(body);
  exchange_->respond(std::move(r));
}

}  // namespace llmctl::server
