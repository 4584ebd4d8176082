// PreTokenizer: the tokenizer.json "pre_tokenizer" (ByteLevel, Split,
// Metaspace, Sequence): cuts normalized text into the words BPE sees.
//
// ByteLevel's byte-to-character mapping is not applied here: the BPE model of
// a byte-level tokenizer keeps its vocabulary as raw bytes instead (see
// BpeModel), which is equivalent and faster. So ByteLevel must be the last
// step, as in every published tokenizer.json.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/tokenizer/json_reader.h"
#include "runtime/tokenizer/regex.h"

namespace llmctl::tokenizer {

class PreTokenizer {
 public:
  static Result<PreTokenizer> parse(const JsonReader& json);

  // Appends the words of `text` to `out`. at_input_start: `text` begins the
  // whole input (Metaspace's prepend_scheme "first"). Words are views into
  // `text` or, where a step rewrote a piece, into strings appended to
  // `storage` (a deque, so earlier strings never move); both must outlive
  // the words. Splitting alone copies nothing.
  void apply(std::string_view text, bool at_input_start, std::deque<std::string>& storage,
             std::vector<std::string_view>& out) const;
  bool byte_level() const { return byte_level_; }

 private:
  enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
  struct Step {
    enum class Kind { kSplit, kByteLevel, kMetaspace };
    Kind kind;
    std::shared_ptr<const Regex> regex;  // kSplit with a regex; kByteLevel with use_regex
    std::string literal;                 // kSplit with a string pattern; kMetaspace replacement
    Behavior behavior = Behavior::kIsolated;
    bool invert = false;
    bool add_prefix_space = false;       // kByteLevel
    int prepend_scheme = 0;              // kMetaspace: 0 always, 1 first, 2 never
    bool split = true;                   // kMetaspace
  };
  static Status add(const JsonReader& json, std::vector<Step>& steps);
  static void split(const Regex* regex, std::string_view literal, Behavior behavior, bool invert,
                    std::string_view piece, std::vector<std::string_view>& out);

  std::vector<Step> steps_;
  bool byte_level_ = false;
};

}  // namespace llmctl::tokenizer
