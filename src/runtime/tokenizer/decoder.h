// Decoder: the tokenizer.json "decoder" (ByteLevel, Replace, ByteFallback,
// Fuse, Strip, Metaspace, Sequence), turning token strings back into text
// exactly as `tokenizers` does; the result is always valid UTF-8 (bytes that
// do not form UTF-8 become U+FFFD).
#pragma once

#include <string>
#include <vector>

#include "runtime/tokenizer/json_reader.h"

namespace llmctl::tokenizer {

class Decoder {
 public:
  // A null JSON value joins tokens with spaces, as `tokenizers` does.
  static Result<Decoder> parse(const JsonReader& json);
  std::string decode(std::vector<std::string> tokens) const;

 private:
  struct Step {
    enum class Kind { kByteLevel, kReplace, kByteFallback, kFuse, kStrip, kMetaspace };
    Kind kind;
    std::string pattern, content;  // kReplace; kStrip content; kMetaspace replacement
    int start = 0, stop = 0;       // kStrip
    bool prepend = true;           // kMetaspace: prepend_scheme != never
  };
  static Status add(const JsonReader& json, std::vector<Step>& steps);
  static void apply(const Step& step, std::vector<std::string>& tokens);

  std::vector<Step> steps_;
  bool none_ = false;
};

}  // namespace llmctl::tokenizer
