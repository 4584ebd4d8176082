// Fuzzes encode/decode of arbitrary bytes with real tokenizers (byte-level and
// SentencePiece-style): no crash, decode(encode(x)) of valid UTF-8 input
// round-trips for the byte-level one, streaming equals full decoding.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/unicode.h"

using llmctl::tokenizer::IncrementalDecoder;
using llmctl::tokenizer::Tokenizer;

static const Tokenizer* load(const char* rel) {
  const std::string dir = std::string(LLMCTL_SHARED_DIR) + "/assets/" + rel;
  auto tok = Tokenizer::load(dir);
  if (!tok.is_ok()) {
    std::fprintf(stderr, "tokenizer_encode_fuzz: %s\n", tok.status().to_string().c_str());
    std::abort();
  }
  return new Tokenizer(std::move(tok).value());
}

static const Tokenizer* qwen_tokenizer = nullptr;
static const Tokenizer* stories_tokenizer = nullptr;

// Loading takes seconds under ASan: done once here, outside the per-input
// timeout.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  qwen_tokenizer = load("tokenizers/qwen3");
  stories_tokenizer = load("stories260K");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Tokenizer& qwen = *qwen_tokenizer;
  const Tokenizer& stories = *stories_tokenizer;
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
