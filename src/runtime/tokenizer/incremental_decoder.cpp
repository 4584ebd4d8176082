// IncrementalDecoder (declared in tokenizer.h): decodes a sliding window of
// ids and emits only text that follows the already-emitted part and does not
// end in U+FFFD (which is what an incomplete UTF-8 character decodes to), the
// scheme streaming servers use. Decoding a window that starts one step back
// keeps context-dependent decoders (Strip of a leading space) consistent with
// decoding everything. A run of byte-fallback tokens ("<0xE4>") is decoded as
// a unit (all of it becomes U+FFFD if any part is not UTF-8), so nothing is
// emitted while such a run may still continue: the stream then equals the
// full decode exactly, at the cost of holding back non-ASCII text of
// byte-fallback models until the next ordinary token.
#include <string_view>

#include "runtime/tokenizer/tokenizer.h"

namespace llmctl::tokenizer {

namespace {

bool ends_with_replacement(std::string_view s) { return s.size() >= 3 && s.substr(s.size() - 3) == "\xEF\xBF\xBD"; }

bool is_byte_token(const std::string& t) {
  return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>';
}

}  // namespace

IncrementalDecoder::IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string IncrementalDecoder::push(int32_t id) {
  ids_.push_back(id);
  if (is_byte_token(tokenizer_->id_to_token(id))) return {};
  const std::span<const int32_t> all(ids_);
  const std::string prefix = tokenizer_->decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_),
                                                skip_special_tokens_);
  const std::string text = tokenizer_->decode(all.subspan(prefix_offset_), skip_special_tokens_);
  if (text.size() <= prefix.size() || ends_with_replacement(text)) return {};
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  return text.substr(prefix.size());
}

std::string IncrementalDecoder::finish() {
  const std::span<const int32_t> all(ids_);
  const std::string prefix = tokenizer_->decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_),
                                                skip_special_tokens_);
  const std::string text = tokenizer_->decode(all.subspan(prefix_offset_), skip_special_tokens_);
  prefix_offset_ = read_offset_ = ids_.size();
  if (text.size() <= prefix.size()) return {};
  return text.substr(prefix.size());
}

}  // namespace llmctl::tokenizer
