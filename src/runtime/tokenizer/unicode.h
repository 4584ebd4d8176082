// The bits of Unicode the tokenizer needs: UTF-8 decoding with the lossy
// policy of Python/Rust, general categories, White_Space and NFC.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmctl::tokenizer {

// Mirrors the order in tools/gen_unicode_tables.py.
enum class GeneralCategory : uint8_t {
  kCn, kLu, kLl, kLt, kLm, kLo, kMn, kMc, kMe, kNd, kNl, kNo,
  kPc, kPd, kPs, kPe, kPi, kPf, kPo, kSm, kSc, kSk, kSo,
  kZs, kZl, kZp, kCc, kCf, kCs, kCo,
};
constexpr int kNumGeneralCategories = 30;

GeneralCategory general_category(char32_t cp);
// The Unicode White_Space property (what \s means in the tokenizers' regexes).
bool is_white_space(char32_t cp);

// Decodes one character at s[i]; advances i. Invalid or truncated sequences
// yield U+FFFD and advance over one maximal invalid subpart (the W3C/WHATWG
// "substitution of maximal subparts" policy used by Python and Rust).
char32_t decode_utf8(std::string_view s, size_t& i);
void append_utf8(std::string& out, char32_t cp);
// True when s is well-formed UTF-8.
bool is_valid_utf8(std::string_view s);
// s with every maximal invalid subpart replaced by U+FFFD.
std::string sanitize_utf8(std::string_view s);
// Length of the longest prefix of s that does not end inside a (possibly still
// incomplete) UTF-8 character.
size_t complete_utf8_prefix(std::string_view s);

// Canonical composition (NFC) of valid UTF-8.
std::string nfc(std::string_view s);

}  // namespace llmctl::tokenizer
