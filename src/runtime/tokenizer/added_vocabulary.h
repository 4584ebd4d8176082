// AddedVocabulary: the tokenizer.json "added_tokens" (special tokens such as
// <|im_start|> and plain added tokens). They are found in the raw text before
// normalization and pre-tokenization: leftmost match first, longest at a
// position, with lstrip/rstrip eating adjacent whitespace and single_word
// requiring word boundaries.
//
// Difference from `tokenizers`: tokens with "normalized": true are matched on
// the raw text too, not on the normalized text (no published model this
// project targets has one whose normalization would change).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/tokenizer/json_reader.h"

namespace llmctl::tokenizer {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool lstrip = false, rstrip = false, single_word = false, normalized = false;
};

class AddedVocabulary {
 public:
  static Result<AddedVocabulary> parse(const JsonReader& json);

  // A piece of input: either text to tokenize or an added token's id.
  struct Segment {
    std::string_view text;
    int32_t id = -1;  // >= 0: an added token
  };
  void split(std::string_view text, std::vector<Segment>& out) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  struct TrieNode {
    std::vector<std::pair<uint8_t, int32_t>> children;  // byte -> node
    int32_t token = -1;                                  // index into tokens_
  };
  // Longest token starting at text[pos]: index into tokens_ or -1; sets len.
  int32_t longest_at(std::string_view text, size_t pos, size_t& len) const;

  std::vector<AddedToken> tokens_;
  std::vector<TrieNode> trie_;
  uint64_t first_bytes_[4] = {0, 0, 0, 0};
};

}  // namespace llmctl::tokenizer
