// TokenizerTextCodec: TextCodec over a model folder's tokenizer.json and chat
// template (llmctl's own tokenizer library). Immutable after load.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "runtime/server/text_codec.h"
#include "runtime/tokenizer/chat_template.h"
#include "runtime/tokenizer/tokenizer.h"

namespace llmctl::server {

class TokenizerTextCodec final : public TextCodec {
 public:
  // A folder without a chat template still serves /v1/completions; chat
  // requests then get 400.
  static Result<std::unique_ptr<TokenizerTextCodec>> load(const std::string& model_dir);

  std::vector<int32_t> encode(const std::string& text, bool add_special_tokens) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override;
  std::unique_ptr<StreamDecoder> stream_decoder(bool skip_special_tokens) const override;
  Result<std::string> render_chat(const nlohmann::json& messages, bool add_generation_prompt,
                                  const nlohmann::json& template_kwargs) const override;
  bool chat_adds_bos() const override { return chat_adds_bos_; }
  int32_t vocab_size() const override { return tokenizer_.vocab_size(); }
  const tokenizer::Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  explicit TokenizerTextCodec(tokenizer::Tokenizer t) : tokenizer_(std::move(t)) {}
  tokenizer::Tokenizer tokenizer_;
  std::optional<tokenizer::ChatTemplate> template_;
  bool chat_adds_bos_ = false;
};

}  // namespace llmctl::server
