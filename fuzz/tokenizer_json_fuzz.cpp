// Fuzzes tokenizer.json parsing: arbitrary bytes must give a Tokenizer or a
// Status, never a crash; a tokenizer that loads must encode and decode.
#include <cstdint>
#include <string>

#include "runtime/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  auto tok = llmctl::tokenizer::Tokenizer::from_json(json, "", "fuzz.json");
  if (!tok.is_ok()) return 0;
  const auto ids = tok->encode("Hello, world! 123 \xe4\xb8\xad <s> \xff", true);
  (void)tok->decode(ids, false);
  (void)tok->decode(ids, true);
  return 0;
}
