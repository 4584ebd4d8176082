// libFuzzer target: parse_safetensors_header must return a Status for any
// bytes, never crash, hang or read out of bounds. The input is the whole file.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runtime/model/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto header = llmctl::model::parse_safetensors_header(bytes, size);
  if (header.is_ok()) {
    // Invariants the loader relies on.
    for (const auto& t : header->tensors) {
      if (t.end < t.begin || header->data_offset + t.end > size) __builtin_trap();
    }
  }
  return 0;
}
