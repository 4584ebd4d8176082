#include "runtime/tokenizer/added_vocabulary.h"

#include "runtime/tokenizer/unicode.h"

namespace llmctl::tokenizer {

Result<AddedVocabulary> AddedVocabulary::parse(const JsonReader& json) {
  AddedVocabulary v;
  v.trie_.emplace_back();
  if (json.is_null()) return v;
  RETURN_IF_ERROR(json.expect_array());
  for (size_t i = 0; i < json.size(); ++i) {
    JsonReader t = json.at(i);
    RETURN_IF_ERROR(t.expect_object());
    AddedToken token;
    ASSIGN_OR_RETURN(int64_t id, t["id"].get_int());
    if (id < 0 || id >= (int64_t{1} << 24)) return t["id"].error("id out of range");
    token.id = static_cast<int32_t>(id);
    ASSIGN_OR_RETURN(token.content, t["content"].get_string());
    if (token.content.empty()) return t["content"].error("empty token");
    ASSIGN_OR_RETURN(token.special, t.bool_or("special", false));
    ASSIGN_OR_RETURN(token.lstrip, t.bool_or("lstrip", false));
    ASSIGN_OR_RETURN(token.rstrip, t.bool_or("rstrip", false));
    ASSIGN_OR_RETURN(token.single_word, t.bool_or("single_word", false));
    ASSIGN_OR_RETURN(token.normalized, t.bool_or("normalized", !token.special));
    // Insert into the byte trie.
    int32_t node = 0;
    for (char c : token.content) {
      const auto b = static_cast<uint8_t>(c);
      int32_t child = -1;
      for (const auto& [cb, cn] : v.trie_[static_cast<size_t>(node)].children) {
        if (cb == b) child = cn;
      }
      if (child < 0) {
        child = static_cast<int32_t>(v.trie_.size());
        v.trie_[static_cast<size_t>(node)].children.push_back({b, child});
        v.trie_.emplace_back();
      }
      node = child;
    }
    v.trie_[static_cast<size_t>(node)].token = static_cast<int32_t>(v.tokens_.size());
    const auto first = static_cast<uint8_t>(token.content[0]);
    v.first_bytes_[first >> 6] |= uint64_t{1} << (first & 63);
    v.tokens_.push_back(std::move(token));
  }
  return v;
}

int32_t AddedVocabulary::longest_at(std::string_view text, size_t pos, size_t& len) const {
  int32_t best = -1;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto b = static_cast<uint8_t>(text[i]);
    int32_t child = -1;
    for (const auto& [cb, cn] : trie_[static_cast<size_t>(node)].children) {
      if (cb == b) {
        child = cn;
        break;
      }
    }
    if (child < 0) break;
    node = child;
    if (trie_[static_cast<size_t>(node)].token >= 0) {
      best = trie_[static_cast<size_t>(node)].token;
      len = i + 1 - pos;
    }
  }
  return best;
}

namespace {

bool is_word_char(char32_t c) {
  const auto cat = general_category(c);
  return c == '_' || (cat >= GeneralCategory::kLu && cat <= GeneralCategory::kNo);
}

// The character ending just before `pos` (0 at the start).
char32_t char_before(std::string_view text, size_t pos) {
  if (pos == 0) return 0;
  size_t start = pos - 1;
  while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
  return decode_utf8(text, start);
}

}  // namespace

void AddedVocabulary::split(std::string_view text, std::vector<Segment>& out) const {
  size_t emitted = 0;  // text before this is already in `out`
  size_t pos = 0;
  while (pos < text.size()) {
    const auto b = static_cast<uint8_t>(text[pos]);
    if (((first_bytes_[b >> 6] >> (b & 63)) & 1) == 0) {
      ++pos;
      continue;
    }
    size_t len = 0;
    const int32_t index = longest_at(text, pos, len);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[static_cast<size_t>(index)];
    size_t start = pos, end = pos + len;
    if (token.single_word) {
      size_t after = end;
      const bool before_ok = !is_word_char(char_before(text, start));
      const bool after_ok = end >= text.size() || !is_word_char(decode_utf8(text, after));
      if (!before_ok || !after_ok) {
        ++pos;
        continue;
      }
    }
    if (token.lstrip) {
      while (start > emitted) {
        size_t cstart = start - 1;
        while (cstart > emitted && (static_cast<uint8_t>(text[cstart]) & 0xC0) == 0x80) --cstart;
        size_t tmp = cstart;
        if (!is_white_space(decode_utf8(text, tmp))) break;
        start = cstart;
      }
    }
    if (token.rstrip) {
      while (end < text.size()) {
        size_t tmp = end;
        if (!is_white_space(decode_utf8(text, tmp))) break;
        end = tmp;
      }
    }
    if (start > emitted) out.push_back({text.substr(emitted, start - emitted), -1});
    out.push_back({text.substr(start, end - start), token.id});
    emitted = pos = end;
  }
  if (emitted < text.size()) out.push_back({text.substr(emitted), -1});
}

}  // namespace llmctl::tokenizer
