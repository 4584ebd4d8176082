// The built-in filters, tests, global functions and methods (str, dict, list)
// of llmctl's Jinja subset. All throw jinja::Error (at args.line/column) on
// misuse; an unknown filter or test names itself.
#pragma once

#include <ctime>
#include <functional>
#include <string>

#include "runtime/tokenizer/jinja_value.h"

namespace llmctl::tokenizer::jinja {

// input | name(args...)
Value apply_filter(const std::string& name, const Value& input, CallArgs& args);
// input is name(args...)
bool apply_test(const std::string& name, const Value& input, CallArgs& args);
// obj.name as a bound method, or an undefined Value when `obj` has no such method.
Value get_method(const Value& obj, const std::string& name, int line, int column);
// The global functions: range, namespace, dict, raise_exception, strftime_now.
void add_globals(Dict& globals, std::function<std::tm()> now);

// Helpers shared by the evaluator and the builtins.
// Items of an iterable: list items, dict keys, string characters; undefined is empty.
List iterate(const Value& v, int line, int column);
// Python's len(); errors for numbers and None.
int64_t length_of(const Value& v, int line, int column);
// a in b
bool contains(const Value& container, const Value& item, int line, int column);
// Python's a < b for numbers and strings (and lists, lexicographically).
bool less_than(const Value& a, const Value& b, int line, int column);
// Python's s.strip(chars) family: which = 'l', 'r' or 'b' (both).
std::string strip_chars(const std::string& s, const Value* chars, char which);

}  // namespace llmctl::tokenizer::jinja
