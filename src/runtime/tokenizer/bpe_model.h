// BpeModel: the tokenizer.json "model" of type BPE. Turns one pre-tokenized
// word into ids by repeatedly applying the lowest-ranked merge (leftmost on
// ties), as `tokenizers` does, with a priority queue per word and a cache of
// recent words (WordCache).
//
// SentencePiece-style models see the whole normalized text as one word (no
// pre-tokenizer). When the vocabulary proves that no merge can join a
// character to a following "\u2581" (no token has "x\u2581" with x != "\u2581"),
// such words are cut before each of those "\u2581": the pieces merge exactly as
// the whole would, and each is short enough to be cached.
//
// Byte-level vocabularies (GPT-2 style, where each byte is written as a
// printable character) are stored with their keys converted back to raw bytes,
// so words are encoded from bytes without the character mapping.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/tokenizer/json_reader.h"
#include "runtime/tokenizer/word_cache.h"

namespace llmctl::tokenizer {

// Hash and equality that let unordered_map<std::string, ...> be probed with a
// string_view without building a string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using StringIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// GPT-2's printable character for each byte, and back.
char32_t byte_to_char(uint8_t b);
// -1 for characters that do not stand for a byte.
int char_to_byte(char32_t c);

class BpeModel {
 public:
  // byte_level: the pre-tokenizer is ByteLevel (see above).
  static Result<BpeModel> parse(const JsonReader& json, bool byte_level);

  BpeModel() = default;  // empty; use parse()
  BpeModel(BpeModel&& other) noexcept;
  BpeModel& operator=(BpeModel&& other) noexcept;

  // Appends the ids of `word` (raw bytes for byte-level models).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  // Token strings as written in tokenizer.json, indexed by id ("" for holes).
  const std::vector<std::string>& tokens() const { return id_to_token_; }
  const StringIdMap& vocab() const { return token_to_id_; }

 private:
  // One piece that no cut applies to: the cache, else the vocabulary or merges.
  void encode_piece(std::string_view word, std::vector<int32_t>& out) const;
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  StringIdMap token_to_id_;            // keys as in tokenizer.json
  StringIdMap encode_vocab_;           // keys as encode sees them (raw bytes if byte-level)
  std::vector<std::string> id_to_token_;
  // (left id << 32 | right id) -> (rank << 32 | merged id)
  std::unordered_map<uint64_t, uint64_t> merges_;
  int32_t byte_ids_[256];              // byte-level: id of each single byte, or -1
  int32_t byte_fallback_ids_[256];     // byte_fallback: id of "<0xXX>", or -1
  bool byte_level_ = false;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  int32_t unk_id_ = -1;

  // Words are cut before this marker where it follows another character
  // (empty: never); see above.
  std::string cut_marker_;
  mutable WordCache cache_;
};

}  // namespace llmctl::tokenizer
