#include "runtime/server/tokenizer_text_codec.h"

namespace llmctl::server {
namespace {

class TokenizerStreamDecoder final : public StreamDecoder {
 public:
  TokenizerStreamDecoder(const tokenizer::Tokenizer& t, bool skip) : decoder_(t, skip) {}
  std::string push(int32_t id) override { return decoder_.push(id); }
  std::string finish() override { return decoder_.finish(); }

 private:
  tokenizer::IncrementalDecoder decoder_;
};

}  // namespace

Result<std::unique_ptr<TokenizerTextCodec>> TokenizerTextCodec::load(const std::string& model_dir) {
  ASSIGN_OR_RETURN(tokenizer::Tokenizer t, tokenizer::Tokenizer::load(model_dir));
  std::unique_ptr<TokenizerTextCodec> codec(new TokenizerTextCodec(std::move(t)));
  Result<tokenizer::ChatTemplate> tmpl = tokenizer::ChatTemplate::load(model_dir);
  if (tmpl.is_ok()) {
    codec->template_.emplace(std::move(tmpl).value());
    // vLLM encodes a rendered chat without special tokens when the template
    // itself writes BOS; detect that by rendering a one-message chat.
    Result<std::string> probe = codec->template_->render(
        nlohmann::json::array({{{"role", "user"}, {"content", "x"}}}), tokenizer::ChatRenderOptions{});
    int32_t bos = codec->tokenizer_.bos_id();
    if (probe.is_ok() && bos >= 0) {
      std::string bos_text = codec->tokenizer_.id_to_token(bos);
      codec->chat_adds_bos_ = !bos_text.empty() && probe->rfind(bos_text, 0) == 0;
    }
  } else if (tmpl.status().code() != StatusCode::kNotFound) {
    return tmpl.status();
  }
  return codec;
}

std::vector<int32_t> TokenizerTextCodec::encode(const std::string& text, bool add_special_tokens) const {
  return tokenizer_.encode(text, add_special_tokens);
}

std::string TokenizerTextCodec::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  return tokenizer_.decode(ids, skip_special_tokens);
}

std::unique_ptr<StreamDecoder> TokenizerTextCodec::stream_decoder(bool skip_special_tokens) const {
  return std::make_unique<TokenizerStreamDecoder>(tokenizer_, skip_special_tokens);
}

Result<std::string> TokenizerTextCodec::render_chat(const nlohmann::json& messages, bool add_generation_prompt,
                                                    const nlohmann::json& template_kwargs) const {
  if (!template_) return Status::invalid_argument("this model has no chat template; use /v1/completions");
  tokenizer::ChatRenderOptions opts;
  opts.add_generation_prompt = add_generation_prompt;
  if (template_kwargs.is_object()) opts.kwargs = template_kwargs;
  return template_->render(messages, opts);
}

}  // namespace llmctl::server
