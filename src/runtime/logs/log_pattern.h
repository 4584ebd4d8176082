// The --grep regular expression, compiled once with PCRE2's JIT (Debian's
// libpcre2). Searching a whole mapped file for the next match and then
// checking only that line is what makes a grep over a gigabyte take well under
// a second when little matches; parsing every line first would not.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace llmctl::logs {

class LogPattern {
 public:
  // An empty pattern matches every line.
  static Result<LogPattern> compile(std::string_view regex, bool ignore_case = false);

  bool empty() const { return !impl_; }
  // Offset of the start of the first match in text at or after `from`, or
  // npos. Matches may span lines; callers re-check the line with matches().
  size_t find(std::string_view text, size_t from) const;
  // Whether the line (no newline in it) contains a match.
  bool matches(std::string_view line) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared_ptr: cheap copies; not for concurrent use
};

}  // namespace llmctl::logs
