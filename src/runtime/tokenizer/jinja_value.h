// jinja::Value: the dynamic value of llmctl's Jinja-subset interpreter, with
// Python's semantics where chat templates can observe them (truthiness,
// equality, str() / repr() of lists and dicts, json.dumps for tojson).
// Lists, dicts and namespaces are shared by reference, as Python objects are.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace llmctl::tokenizer::jinja {

// A template error at a source position. Thrown inside the interpreter only
// (parsing and rendering are deeply recursive, and every step can fail);
// Template::parse / Template::render turn it into a Status at the edge.
struct Error : std::runtime_error {
  Error(const std::string& message, int at_line, int at_column)
      : std::runtime_error(message), line(at_line), column(at_column) {}
  int line;
  int column;
  bool raised_by_template = false;  // raise_exception(): the message is the template's own
};

struct Value;
using List = std::vector<Value>;

// Insertion-ordered string-keyed mapping (Python dicts keep insertion order).
struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  const Value* find(const std::string& key) const;
  Value* find(const std::string& key);
  void set(const std::string& key, Value value);
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  int line = 0;
  int column = 0;
  // The named argument, else the positional one at `index`, else nullptr.
  const Value* get(const std::string& name, size_t index) const;
};
using Function = std::function<Value(CallArgs&)>;

struct Value {
  enum class Type { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kFunction };

  Type type = Type::kUndefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                  // kString; for kUndefined the name that was missing
  bool is_tuple = false;          // a kList written as a tuple: repr uses ( )
  std::shared_ptr<List> list;     // kList
  std::shared_ptr<Dict> dict;     // kDict, kNamespace
  std::shared_ptr<Function> fn;   // kFunction

  static Value undefined(std::string name = "") { Value v; v.s = std::move(name); return v; }
  static Value none() { Value v; v.type = Type::kNone; return v; }
  static Value boolean(bool x) { Value v; v.type = Type::kBool; v.b = x; return v; }
  static Value integer(int64_t x) { Value v; v.type = Type::kInt; v.i = x; return v; }
  static Value number(double x) { Value v; v.type = Type::kFloat; v.f = x; return v; }
  static Value string(std::string x) { Value v; v.type = Type::kString; v.s = std::move(x); return v; }
  static Value make_list(List items = {}, bool tuple = false);
  static Value make_dict(Dict d = {});
  static Value make_namespace(Dict d = {});
  static Value function(Function f);
  static Value from_json(const nlohmann::ordered_json& j);

  bool is_undefined() const { return type == Type::kUndefined; }
  bool is_none() const { return type == Type::kNone; }
  bool is_string() const { return type == Type::kString; }
  bool is_list() const { return type == Type::kList; }
  bool is_mapping() const { return type == Type::kDict || type == Type::kNamespace; }
  bool is_number() const { return type == Type::kInt || type == Type::kFloat || type == Type::kBool; }

  // Python truthiness (undefined is false).
  bool truthy() const;
  // Python ==, deep for lists and dicts; int/float/bool compare by value.
  bool equals(const Value& other) const;
  // As str() in Python (Jinja's {{ x }}): strings raw, None -> "None",
  // lists/dicts as repr, undefined -> "".
  std::string str() const;
  // As repr() in Python: strings quoted.
  std::string repr() const;
  double as_double() const;
  std::string type_name() const;  // Python's name for the type, for messages
};

struct JsonDumpOptions {
  std::optional<std::string> indent;  // None: one line
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
  bool ensure_ascii = false;
};
// Python's json.dumps(value, ...), byte for byte for what JSON can hold.
std::string json_dumps(const Value& value, const JsonDumpOptions& opts, int line, int column);

// Python's repr() of a float ("1.0", "1e-05", "1.5e+16").
std::string python_float_repr(double x);

// Unicode helpers for strings as sequences of code points (len(), slicing).
std::vector<uint32_t> utf8_decode(const std::string& s);
std::string utf8_encode(const std::vector<uint32_t>& cps);
void utf8_append(std::string& out, uint32_t cp);

}  // namespace llmctl::tokenizer::jinja
