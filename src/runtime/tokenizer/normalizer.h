// Normalizer: the tokenizer.json "normalizer" (NFC, Prepend, Replace,
// Sequence), applied to each piece of text between added tokens.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/tokenizer/json_reader.h"
#include "runtime/tokenizer/regex.h"

namespace llmctl::tokenizer {

class Normalizer {
 public:
  // A null JSON value gives the identity.
  static Result<Normalizer> parse(const JsonReader& json);
  void apply(std::string& text) const;
  bool empty() const { return steps_.empty(); }

 private:
  struct Step {
    enum class Kind { kNfc, kPrepend, kReplace, kReplaceRegex };
    Kind kind;
    std::string pattern, content;
    std::shared_ptr<const Regex> regex;
  };
  static Status add(const JsonReader& json, std::vector<Step>& steps);
  std::vector<Step> steps_;
};

// Replaces every non-overlapping occurrence of `from` (non-empty) by `to`,
// after `prefix`.
std::string replace_all(std::string_view text, std::string_view from, std::string_view to,
                        std::string_view prefix = {});
// Replaces every match of `regex` by `to`.
std::string replace_regex(std::string_view text, const Regex& regex, std::string_view to);

}  // namespace llmctl::tokenizer
