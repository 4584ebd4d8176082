// The lexer of llmctl's Jinja subset: splits template source into text,
// {{ output }} and {% statement %} segments (comments dropped), applying
// whitespace control exactly as Jinja does: "-" strips all whitespace on that
// side, "+" keeps it, trim_blocks drops the first newline after a block or
// comment tag, lstrip_blocks drops spaces and tabs before a block or comment
// tag at the start of a line. Then tokenizes each tag's expression.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace llmctl::tokenizer::jinja {

struct LexOptions {
  // transformers' chat-template environment turns both on.
  bool trim_blocks = true;
  bool lstrip_blocks = true;
};

struct Token {
  enum class Kind { kName, kString, kInt, kFloat, kOp, kEnd };
  Kind kind = Kind::kEnd;
  std::string text;  // name, decoded string literal, or operator
  int64_t int_value = 0;
  double float_value = 0;
  int line = 0;
  int column = 0;
};

struct Segment {
  enum class Kind { kText, kOutput, kStatement };
  Kind kind = Kind::kText;
  std::string text;           // kText
  std::vector<Token> tokens;  // kOutput / kStatement, ending with a kEnd token
  int line = 0;
  int column = 0;
};

// Throws jinja::Error (with the position) on an unterminated tag, comment or string.
std::vector<Segment> lex_template(const std::string& source, const LexOptions& options = {});

}  // namespace llmctl::tokenizer::jinja
