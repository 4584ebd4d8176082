// jinja::Template: a parsed template of llmctl's Jinja subset and its renderer.
// Configured as transformers configures its chat-template environment:
// trim_blocks and lstrip_blocks on, no autoescape, Jinja's default Undefined
// (printing an undefined name gives "", using its attributes is an error),
// loop controls (break / continue), recursive for loops (`loop(items)`),
// {% call(args) m() %} blocks (caller(...) is a closure over the call site),
// Python's `str % args` formatting, and the globals raise_exception,
// strftime_now, namespace, range and dict. Lists and dicts are immutable
// from the template (the sandbox refuses list.append and dict.update).
//
// A parsed Template is immutable; render() may run on several threads at once.
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "runtime/tokenizer/jinja_ast.h"
#include "runtime/tokenizer/jinja_lexer.h"
#include "runtime/tokenizer/jinja_value.h"

namespace llmctl::tokenizer::jinja {

struct RenderContext {
  Dict variables;                  // messages, tools, bos_token, ...
  std::function<std::tm()> now;    // strftime_now's clock; empty: local time now
};

class Template {
 public:
  // INVALID_ARGUMENT "<origin>:<line>:<column>: <what>" for a syntax error or
  // an unsupported construct.
  static Result<std::shared_ptr<const Template>> parse(const std::string& source, std::string origin,
                                                       const LexOptions& options = {});

  // INVALID_ARGUMENT "<origin>:<line>:<column>: <what>" for a runtime error;
  // for raise_exception(msg) the message is "<msg> (raised by <origin>:<line>:<column>)".
  Result<std::string> render(const RenderContext& context) const;

  const std::string& origin() const { return origin_; }

 private:
  Body body_;
  std::string origin_;
};

}  // namespace llmctl::tokenizer::jinja
