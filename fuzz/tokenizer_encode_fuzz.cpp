// Fuzzes encode/decode of arbitrary bytes with real tokenizers (byte-level and
// SentencePiece-style): no crash, decode(encode(x)) of valid UTF-8 input
// round-trips for the byte-level one, streaming equals full decoding.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/unicode.h"

using llmctl::tokenizer::IncrementalDecoder;
using llmctl::tokenizer::Tokenizer;

static const Tokenizer& load(const char* rel) {
  auto tok = Tokenizer::load(std::string(LLMCTL_SHARED_DIR) + "/assets/" + rel);
  if (!tok.is_ok()) std::abort();
  return *new Tokenizer(std::move(tok).value());
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Tokenizer& qwen = load("tokenizers/qwen3");
  static const Tokenizer& stories = load("stories260K");
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const Tokenizer* tok : {&qwen, &stories}) {
    const auto ids = tok->encode(text, true);
    for (int32_t id : ids) {
      if (id < 0 || id >= tok->vocab_size()) std::abort();
    }
    const std::string decoded = tok->decode(ids, false);
    if (!llmctl::tokenizer::is_valid_utf8(decoded)) std::abort();
    IncrementalDecoder stream(*tok, false);
    std::string streamed;
    for (int32_t id : ids) streamed += stream.push(id);
    streamed += stream.finish();
    if (streamed != decoded) std::abort();
  }
  // Byte-level BPE is lossless on (NFC-normalized, sanitized) text.
  const std::string clean = llmctl::tokenizer::nfc(llmctl::tokenizer::sanitize_utf8(text));
  if (qwen.decode(qwen.encode(clean, false), false) != clean) std::abort();
  return 0;
}
