// PostProcessor: the tokenizer.json "post_processor" for single sequences
// (TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence),
// reduced to the ids it puts before and after the encoded text when
// add_special_tokens is true.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/tokenizer/json_reader.h"

namespace llmctl::tokenizer {

struct PostProcessor {
  std::vector<int32_t> prefix, suffix;

  static Result<PostProcessor> parse(const JsonReader& json);
};

}  // namespace llmctl::tokenizer
