// Python's printf-style string formatting, `format % args`, as chat templates
// use it ("%s" % x, "%d" % n, "%(name)s" % mapping, "%.2f" % (x,)).
//
// `args` is a tuple (one value per conversion), a mapping (for "%(key)"
// conversions; a plain "%s" then formats the mapping itself) or any other
// single value. Conversions: d i u o x X e E f F g G c r a s and %%, with the
// flags - + space # 0, width and precision (either may be *). Widths count
// code points, as Python's do. Errors carry Python's messages
// ("not all arguments converted during string formatting", ...).
#pragma once

#include <string>

#include "runtime/tokenizer/jinja_value.h"

namespace llmctl::tokenizer::jinja {

// Throws Error at line/column on a bad format or mismatched arguments.
std::string percent_format(const std::string& format, const Value& args, int line, int column);

}  // namespace llmctl::tokenizer::jinja
