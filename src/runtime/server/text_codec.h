// TextCodec: the tokenizer and chat template as the server sees them. The
// real one wraps tokenizer::Tokenizer and tokenizer::ChatTemplate
// (tokenizer_text_codec.h); tests use a byte-level codec.
//
// Thread safety: every method is const and may be called from any thread.
// A StreamDecoder belongs to one stream and one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace llmctl::server {

// Text for ids that arrive one at a time; never splits a UTF-8 character;
// the concatenation of push() and finish() results is decode(all ids).
class StreamDecoder {
 public:
  virtual ~StreamDecoder() = default;
  virtual std::string push(int32_t id) = 0;
  virtual std::string finish() = 0;
};

class TextCodec {
 public:
  virtual ~TextCodec() = default;
  virtual std::vector<int32_t> encode(const std::string& text, bool add_special_tokens) const = 0;
  virtual std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const = 0;
  virtual std::unique_ptr<StreamDecoder> stream_decoder(bool skip_special_tokens) const = 0;
  // The prompt text of a chat (a JSON array of messages), or INVALID_ARGUMENT.
  virtual Result<std::string> render_chat(const nlohmann::json& messages, bool add_generation_prompt,
                                          const nlohmann::json& template_kwargs) const = 0;
  // Whether the chat template already writes BOS (then the prompt is encoded
  // without add_special_tokens, as vLLM does).
  virtual bool chat_adds_bos() const = 0;
  virtual int32_t vocab_size() const = 0;
};

}  // namespace llmctl::server
