// Tokenizer: text <-> token ids from a Hugging Face tokenizer.json, with the
// same results as the `tokenizers` library (ids and decoded text).
//
// Supported (what the published Llama 2/3, Mistral, Mistral-Nemo, Qwen2/3,
// GPT-2 and llama2.c tokenizer.json files use):
//   model:          BPE (merges as "a b" or ["a","b"]; byte_fallback, unk_token,
//                   fuse_unk, ignore_merges)
//   normalizer:     NFC, Prepend, Replace, Sequence
//   pre_tokenizer:  ByteLevel, Split (regex or string), Metaspace, Sequence
//   post_processor: TemplateProcessing, ByteLevel, Sequence
//   decoder:        ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence
//   added tokens:   matched on the raw text before normalization (leftmost,
//                   longest), lstrip/rstrip/single_word honoured.
// Anything else is a load-time Status naming the file and JSON path.
//
// Invalid UTF-8 input: encode() first replaces every maximal invalid byte
// subsequence by U+FFFD (the policy of Python's bytes.decode("utf-8",
// "replace") and Rust's from_utf8_lossy), so its ids equal HF's for the lossily
// decoded string. decode() likewise turns byte sequences that are not UTF-8
// into U+FFFD, as HF does.
//
// Thread safety: a loaded Tokenizer is immutable apart from an internal,
// mutex-guarded word cache; encode()/decode() may be called from any number of
// threads at once. IncrementalDecoder is single-threaded (one per stream).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace llmctl::tokenizer {

struct TokenizerImpl;

class Tokenizer {
 public:
  // Loads <model_dir>/tokenizer.json and, when present,
  // <model_dir>/tokenizer_config.json (bos/eos tokens).
  static Result<Tokenizer> load(const std::string& model_dir);
  // The same from in-memory JSON texts (config may be empty). `name` is used
  // in error messages in place of a file name.
  static Result<Tokenizer> from_json(std::string_view tokenizer_json,
                                     std::string_view tokenizer_config_json,
                                     std::string_view name = "tokenizer.json");

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // add_special_tokens: apply the post-processor (e.g. prepend BOS). Special
  // tokens written in the text ("<|im_start|>") are always recognised.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const;
  // Ids outside the vocabulary are skipped.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const;

  // -1 when the tokenizer has none.
  int32_t bos_id() const;
  // eos_token of tokenizer_config.json (first) plus any other known end ids;
  // empty when none. generation_config.json may name more (the model's job).
  const std::vector<int32_t>& eos_ids() const;
  // One more than the largest id (model vocabulary and added tokens).
  int32_t vocab_size() const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token's string as written in tokenizer.json; empty for unknown ids.
  std::string id_to_token(int32_t id) const;
  // True for added tokens marked "special" (skipped by skip_special_tokens).
  bool is_special(int32_t id) const;

 private:
  explicit Tokenizer(std::unique_ptr<TokenizerImpl> impl);
  std::unique_ptr<TokenizerImpl> impl_;
};

// Streams text for ids that arrive one at a time. Never emits part of a UTF-8
// character; the concatenation of everything push() and finish() return equals
// tokenizer.decode(all_ids, skip_special_tokens).
// The Tokenizer must outlive the decoder.
class IncrementalDecoder {
 public:
  IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens);
  // Text that became final with this id (often empty).
  std::string push(int32_t id);
  // Whatever is still held back (e.g. an incomplete character at the end).
  std::string finish();

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> ids_;
  size_t prefix_offset_ = 0;  // ids_[prefix_offset_, read_offset_) give context
  size_t read_offset_ = 0;    // text of ids_ before this has been emitted
};

}  // namespace llmctl::tokenizer
