// Regex: a small backtracking regex engine for the pre-tokenizer patterns of
// tokenizer.json (GPT-2, Llama 3, Qwen2/3, Mistral-Nemo). The `tokenizers`
// library uses Oniguruma; this engine has the same leftmost-first (Perl)
// semantics for the subset those patterns use:
//   literals, `.`, classes `[...]`/`[^...]` with ranges, \s \S \d \D \w \W,
//   \p{..} \P{..} (general categories and their one-letter groups),
//   escapes \r \n \t \f \v \xHH \x{H..} \uHHHH, groups (...) (?:...) (?i:...),
//   lookahead (?=...) (?!...), alternation, and greedy quantifiers ? * + {n,m}
//   on single characters/classes (only ? and {n,m} on groups).
// Anything else fails compile() with a Status giving the offset. Case
// folding under (?i) is the simple one of ASCII letters plus U+017F/U+212A.
// Matching works on code points; a compiled Regex is immutable and may be
// used from several threads.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace llmctl::tokenizer {

class Regex {
 public:
  static Result<Regex> compile(std::string_view pattern);

  // Appends [start, end) code point ranges of the successive non-overlapping
  // leftmost-first matches in `text` (empty matches are skipped).
  void find_all(std::span<const char32_t> text, std::vector<std::pair<uint32_t, uint32_t>>& out) const;

  struct CharClass {
    uint64_t ascii[2] = {0, 0};  // final answers for cp < 128, negation applied
    uint32_t categories = 0;     // bit per GeneralCategory
    bool white_space = false, non_white_space = false, negated = false;
    std::vector<std::pair<char32_t, char32_t>> ranges;  // inclusive
    bool matches(char32_t cp) const {
      return cp < 128 ? ((ascii[cp >> 6] >> (cp & 63)) & 1) != 0 : matches_slow(cp);
    }
    bool matches_slow(char32_t cp) const;
  };
  enum class Op : uint8_t { kChar, kSplit, kJmp, kLook, kMatch };
  struct Inst {
    Op op;
    bool negative = false;  // kLook: (?!...)
    int32_t a = 0;          // kChar: class; kSplit/kJmp: first target; kLook: program
    int32_t b = 0;          // kSplit: second target
    int32_t min = 0, max = 0;  // kChar repetition
  };
  // What can come next from an instruction on: the chars a match continuing
  // there can consume first, and whether it can succeed consuming nothing.
  // Lets kSplit skip a branch that cannot match at the current char.
  struct Next {
    uint64_t ascii[2] = {0, 0};
    bool non_ascii = false;
    bool nullable = false;
    bool viable(std::span<const char32_t> text, uint32_t pos) const {
      if (nullable) return true;
      if (pos >= text.size()) return false;
      const char32_t c = text[pos];
      return c < 128 ? ((ascii[c >> 6] >> (c & 63)) & 1) != 0 : non_ascii;
    }
  };
  struct Program {
    std::vector<Inst> insts;
    std::vector<Next> next;  // one per instruction
    uint64_t first_ascii[2] = {0, 0};  // chars that can start a match (< 128)
    bool first_non_ascii = true;        // whether a char >= 128 can
    bool can_be_empty = true;
  };

 private:
  struct Frame {
    int32_t pc;
    uint32_t pos;
    int32_t count;  // >= 0: retry a kChar with this many repetitions; -1: a split
  };
  // End of the match starting at pos, or -1.
  int64_t match_at(const Program& program, std::span<const char32_t> text, uint32_t pos,
                   std::vector<Frame>& stack) const;

  std::vector<CharClass> classes_;
  std::vector<Program> programs_;  // [0] is the main one, others are lookaheads
};

}  // namespace llmctl::tokenizer
