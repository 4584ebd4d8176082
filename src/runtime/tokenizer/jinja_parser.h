// The parser of llmctl's Jinja subset: lexed segments to a syntax tree, with
// Jinja's operator precedence (filters and tests bind tightest, then **, then
// * / // %, then ~, then + -, comparisons, not, and, or, if-else).
// Unsupported statements and syntax errors throw jinja::Error with the
// position of the offending token.
#pragma once

#include <vector>

#include "runtime/tokenizer/jinja_ast.h"
#include "runtime/tokenizer/jinja_lexer.h"

namespace llmctl::tokenizer::jinja {

Body parse_template(const std::vector<Segment>& segments);

}  // namespace llmctl::tokenizer::jinja
