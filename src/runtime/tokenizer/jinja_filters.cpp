// Filters, tests and global functions of llmctl's Jinja subset, following
// Jinja 3.1's built-ins and transformers' overrides (tojson as json.dumps
// with ensure_ascii=False; raise_exception; strftime_now).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>

#include "runtime/tokenizer/jinja_builtins.h"

namespace llmctl::tokenizer::jinja {
namespace {

[[noreturn]] void fail(const std::string& message, const CallArgs& a) { throw Error(message, a.line, a.column); }

std::string lower_ascii(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return s;
}

bool bool_arg(const CallArgs& a, const std::string& name, size_t index, bool def) {
  const Value* v = a.get(name, index);
  return v ? v->truthy() : def;
}

// Follows a dotted attribute path ("function.name", "0") into a value.
Value attribute_path(const Value& v, const std::string& path) {
  Value cur = v;
  size_t start = 0;
  while (start <= path.size()) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (cur.is_mapping()) {
      const Value* next = cur.dict->find(part);
      cur = next ? *next : Value::undefined("'dict object' has no attribute '" + part + "'");
    } else if (cur.is_list() && !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit)) {
      size_t k = std::stoul(part);
      cur = k < cur.list->size() ? (*cur.list)[k] : Value::undefined();
    } else {
      return Value::undefined("no attribute '" + part + "'");
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return cur;
}

// The test named by args[first] applied with args[first + 1 ...]; no name: truthiness.
bool run_test_from_args(const Value& item, const CallArgs& a, size_t first) {
  if (a.positional.size() <= first) return item.truthy();
  const Value& name = a.positional[first];
  if (!name.is_string()) fail("test name must be a string", a);
  CallArgs test_args;
  test_args.line = a.line;
  test_args.column = a.column;
  test_args.positional.assign(a.positional.begin() + static_cast<long>(first) + 1, a.positional.end());
  return apply_test(name.s, item, test_args);
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Value filter_tojson(const Value& input, CallArgs& a) {
  JsonDumpOptions o;
  if (const Value* indent = a.get("indent", 0); indent && !indent->is_none()) {
    if (indent->type == Value::Type::kInt) o.indent = std::string(static_cast<size_t>(std::max<int64_t>(indent->i, 0)), ' ');
    else if (indent->is_string()) o.indent = indent->s;
    else fail("tojson indent must be an integer or a string", a);
    o.item_separator = ",";
  }
  if (const Value* sep = a.get("separators", 2); sep && !sep->is_none()) {
    if (!sep->is_list() || sep->list->size() != 2 || !(*sep->list)[0].is_string() || !(*sep->list)[1].is_string()) {
      fail("tojson separators must be a pair of strings", a);
    }
    o.item_separator = (*sep->list)[0].s;
    o.key_separator = (*sep->list)[1].s;
  }
  o.ensure_ascii = bool_arg(a, "ensure_ascii", 1, false);
  o.sort_keys = bool_arg(a, "sort_keys", 3, false);
  if (input.is_undefined()) fail(input.s.empty() ? "Object of type Undefined is not JSON serializable" : input.s, a);
  return Value::string(json_dumps(input, o, a.line, a.column));
}

Value filter_indent(const Value& input, CallArgs& a) {
  std::string indention = "    ";
  if (const Value* w = a.get("width", 0)) {
    indention = w->is_string() ? w->s : std::string(static_cast<size_t>(std::max<int64_t>(w->i, 0)), ' ');
  }
  bool first = bool_arg(a, "first", 1, false);
  bool blank = bool_arg(a, "blank", 2, false);
  std::string s = input.str() + "\n";
  std::vector<std::string> lines;
  std::string line;
  for (size_t k = 0; k < s.size(); ++k) {
    if (s[k] == '\n' || s[k] == '\r') {
      lines.push_back(line);
      line.clear();
      if (s[k] == '\r' && k + 1 < s.size() && s[k + 1] == '\n') ++k;
    } else {
      line += s[k];
    }
  }
  if (!line.empty()) lines.push_back(line);
  std::string rv;
  if (blank) {
    for (size_t k = 0; k < lines.size(); ++k) rv += (k ? "\n" + indention : "") + lines[k];
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t k = 1; k < lines.size(); ++k) rv += "\n" + (lines[k].empty() ? "" : indention + lines[k]);
  }
  if (first) rv = indention + rv;
  return Value::string(rv);
}

// Sort key comparison honoring Jinja's case_sensitive=False default.
bool sort_less(const Value& x, const Value& y, bool case_sensitive, const CallArgs& a) {
  if (!case_sensitive && x.is_string() && y.is_string()) return lower_ascii(x.s) < lower_ascii(y.s);
  return less_than(x, y, a.line, a.column);
}

Value filter_sequence(const std::string& name, const Value& input, CallArgs& a) {
  List items = iterate(input, a.line, a.column);
  if (name == "list") return Value::make_list(std::move(items));
  if (name == "first") return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
  if (name == "last") return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
  if (name == "reverse") {
    if (input.is_string()) {
      std::vector<uint32_t> cps = utf8_decode(input.s);
      std::reverse(cps.begin(), cps.end());
      return Value::string(utf8_encode(cps));
    }
    std::reverse(items.begin(), items.end());
    return Value::make_list(std::move(items));
  }
  if (name == "join") {
    const Value* sep = a.get("d", 0);
    const Value* attr = a.get("attribute", 1);
    std::string out;
    for (size_t k = 0; k < items.size(); ++k) {
      if (k && sep) out += sep->str();
      out += (attr ? attribute_path(items[k], attr->str()) : items[k]).str();
    }
    return Value::string(out);
  }
  if (name == "map") {
    List out;
    const Value* attr = a.get("attribute", 999);
    if (attr) {
      const Value* def = a.get("default", 999);
      for (const Value& item : items) {
        Value v = attribute_path(item, attr->str());
        out.push_back(v.is_undefined() && def ? *def : v);
      }
      return Value::make_list(std::move(out));
    }
    if (a.positional.empty() || !a.positional[0].is_string()) fail("map requires a filter name or attribute=", a);
    CallArgs fa;
    fa.line = a.line;
    fa.column = a.column;
    fa.positional.assign(a.positional.begin() + 1, a.positional.end());
    for (const auto& kw : a.keyword) fa.keyword.push_back(kw);
    for (const Value& item : items) out.push_back(apply_filter(a.positional[0].s, item, fa));
    return Value::make_list(std::move(out));
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    bool want = name == "select" || name == "selectattr";
    bool by_attr = name == "selectattr" || name == "rejectattr";
    if (by_attr && (a.positional.empty() || !a.positional[0].is_string())) fail(name + " requires an attribute name", a);
    List out;
    for (const Value& item : items) {
      Value subject = by_attr ? attribute_path(item, a.positional[0].s) : item;
      if (run_test_from_args(subject, a, by_attr ? 1 : 0) == want) out.push_back(item);
    }
    return Value::make_list(std::move(out));
  }
  if (name == "unique") {
    bool cs = bool_arg(a, "case_sensitive", 0, false);
    const Value* attr = a.get("attribute", 1);
    List out, seen;
    for (const Value& item : items) {
      Value key = attr ? attribute_path(item, attr->str()) : item;
      if (!cs && key.is_string()) key = Value::string(lower_ascii(key.s));
      if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return s.equals(key); })) {
        seen.push_back(key);
        out.push_back(item);
      }
    }
    return Value::make_list(std::move(out));
  }
  if (name == "sort" || name == "min" || name == "max") {
    bool reverse = name == "sort" && bool_arg(a, "reverse", 0, false);
    bool cs = bool_arg(a, "case_sensitive", name == "sort" ? 1 : 0, false);
    const Value* attr = a.get("attribute", name == "sort" ? 2 : 1);
    auto key = [&](const Value& v) { return attr ? attribute_path(v, attr->str()) : v; };
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
      return reverse ? sort_less(key(y), key(x), cs, a) : sort_less(key(x), key(y), cs, a);
    });
    if (name == "sort") return Value::make_list(std::move(items));
    if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
    return name == "min" ? items.front() : items.back();
  }
  if (name == "sum") {
    const Value* attr = a.get("attribute", 0);
    const Value* start = a.get("start", 1);
    Value total = start ? *start : Value::integer(0);
    for (const Value& item : items) {
      Value v = attr ? attribute_path(item, attr->str()) : item;
      if (!v.is_number() || !total.is_number()) fail("sum of non-numbers", a);
      bool ints = v.type != Value::Type::kFloat && total.type != Value::Type::kFloat;
      total = ints ? Value::integer(total.i + (v.type == Value::Type::kBool ? v.b : v.i)) : Value::number(total.as_double() + v.as_double());
    }
    return total;
  }
  fail("unknown filter '" + name + "'", a);
}

}  // namespace

Value apply_filter(const std::string& name, const Value& input, CallArgs& a) {
  if (name == "default" || name == "d") {
    const Value* def = a.get("default_value", 0);
    bool boolean = bool_arg(a, "boolean", 1, false);
    if (input.is_undefined() || (boolean && !input.truthy())) return def ? *def : Value::string("");
    return input;
  }
  if (name == "tojson") return filter_tojson(input, a);
  if (name == "safe") return input;
  if (name == "string") return Value::string(input.str());
  if (name == "escape" || name == "e" || name == "forceescape") return Value::string(html_escape(input.str()));
  if (name == "length" || name == "count") return Value::integer(length_of(input, a.line, a.column));
  if (name == "trim") {
    const Value* chars = a.get("chars", 0);
    return Value::string(strip_chars(input.str(), chars && chars->is_string() ? chars : nullptr, 'b'));
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    CallArgs none;
    none.line = a.line;
    none.column = a.column;
    if (name == "capitalize") {
      // Jinja: first character upper, the rest lower.
      std::string s = lower_ascii(input.str());
      if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 32);
      return Value::string(s);
    }
    Value s = Value::string(input.str());
    return (*get_method(s, name, a.line, a.column).fn)(none);
  }
  if (name == "replace") {
    Value s = Value::string(input.str());
    CallArgs ra = a;
    return (*get_method(s, "replace", a.line, a.column).fn)(ra);
  }
  if (name == "indent") return filter_indent(input, a);
  if (name == "wordcount") {
    CallArgs none;
    Value parts = (*get_method(Value::string(input.str()), "split", a.line, a.column).fn)(none);
    return Value::integer(static_cast<int64_t>(parts.list->size()));
  }
  if (name == "items") {
    if (input.is_undefined()) return Value::make_list();
    if (!input.is_mapping()) fail("items filter expects a mapping, got " + input.type_name(), a);
    List out;
    for (const auto& [k, v] : input.dict->items) out.push_back(Value::make_list({Value::string(k), v}, true));
    return Value::make_list(std::move(out));
  }
  if (name == "dictsort") {
    if (!input.is_mapping()) fail("dictsort expects a mapping, got " + input.type_name(), a);
    bool cs = bool_arg(a, "case_sensitive", 0, false);
    const Value* by = a.get("by", 1);
    bool by_value = by && by->str() == "value";
    bool reverse = bool_arg(a, "reverse", 2, false);
    List out;
    for (const auto& [k, v] : input.dict->items) out.push_back(Value::make_list({Value::string(k), v}, true));
    std::stable_sort(out.begin(), out.end(), [&](const Value& x, const Value& y) {
      const Value& kx = (*x.list)[by_value ? 1 : 0];
      const Value& ky = (*y.list)[by_value ? 1 : 0];
      return reverse ? sort_less(ky, kx, cs, a) : sort_less(kx, ky, cs, a);
    });
    return Value::make_list(std::move(out));
  }
  if (name == "int") {
    const Value* def = a.get("default", 0);
    Value fallback = def ? *def : Value::integer(0);
    if (input.type == Value::Type::kInt) return input;
    if (input.type == Value::Type::kBool) return Value::integer(input.b);
    if (input.type == Value::Type::kFloat) return Value::integer(static_cast<int64_t>(input.f));
    if (input.is_string()) {
      std::string s = strip_chars(input.s, nullptr, 'b');
      char* end = nullptr;
      long long v = std::strtoll(s.c_str(), &end, 10);
      if (!s.empty() && end && *end == '\0') return Value::integer(v);
      double d = std::strtod(s.c_str(), &end);
      if (!s.empty() && end && *end == '\0') return Value::integer(static_cast<int64_t>(d));
    }
    return fallback;
  }
  if (name == "float") {
    const Value* def = a.get("default", 0);
    if (input.is_number()) return Value::number(input.as_double());
    if (input.is_string()) {
      std::string s = strip_chars(input.s, nullptr, 'b');
      char* end = nullptr;
      double d = std::strtod(s.c_str(), &end);
      if (!s.empty() && end && *end == '\0') return Value::number(d);
    }
    return def ? *def : Value::number(0.0);
  }
  if (name == "abs") {
    if (input.type == Value::Type::kInt) return Value::integer(std::llabs(input.i));
    if (input.type == Value::Type::kFloat) return Value::number(std::fabs(input.f));
    fail("bad operand type for abs(): '" + input.type_name() + "'", a);
  }
  if (name == "round") {
    const Value* p = a.get("precision", 0);
    const Value* m = a.get("method", 1);
    int64_t precision = p && p->type == Value::Type::kInt ? p->i : 0;
    std::string method = m ? m->str() : "common";
    double scale = std::pow(10.0, static_cast<double>(precision));
    double x = input.as_double() * scale;
    double r = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::round(x);
    return Value::number(r / scale);
  }
  return filter_sequence(name, input, a);
}

bool apply_test(const std::string& name, const Value& v, CallArgs& a) {
  using T = Value::Type;
  const Value* arg = a.positional.empty() ? nullptr : &a.positional[0];
  auto need_arg = [&]() -> const Value& {
    if (!arg) fail("test '" + name + "' requires an argument", a);
    return *arg;
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.type == T::kDict;
  if (name == "iterable") return v.is_undefined() || v.is_string() || v.is_list() || v.type == T::kDict;
  if (name == "sequence") return v.is_string() || v.is_list() || v.type == T::kDict;
  if (name == "number") return v.is_number();
  if (name == "integer") return v.type == T::kInt;
  if (name == "float") return v.type == T::kFloat;
  if (name == "boolean") return v.type == T::kBool;
  if (name == "true") return v.type == T::kBool && v.b;
  if (name == "false") return v.type == T::kBool && !v.b;
  if (name == "callable") return v.type == T::kFunction;
  if (name == "odd" || name == "even") {
    if (v.type != T::kInt) fail("test '" + name + "' expects an integer", a);
    return (((v.i % 2) + 2) % 2 == 1) == (name == "odd");
  }
  if (name == "divisibleby") {
    const Value& d = need_arg();
    if (v.type != T::kInt || d.type != T::kInt || d.i == 0) fail("divisibleby expects non-zero integers", a);
    return v.i % d.i == 0;
  }
  if (name == "lower" || name == "upper") {
    std::string s = v.str();
    for (char c : s) {
      if (name == "lower" && c >= 'A' && c <= 'Z') return false;
      if (name == "upper" && c >= 'a' && c <= 'z') return false;
    }
    return true;
  }
  if (name == "equalto" || name == "eq" || name == "==") return v.equals(need_arg());
  if (name == "ne" || name == "!=") return !v.equals(need_arg());
  if (name == "sameas") {
    const Value& o = need_arg();
    if (v.type != o.type) return false;
    if (v.is_list()) return v.list == o.list;
    if (v.is_mapping()) return v.dict == o.dict;
    if (v.type == T::kFunction) return v.fn == o.fn;
    return v.equals(o);
  }
  if (name == "lt" || name == "lessthan" || name == "<") return less_than(v, need_arg(), a.line, a.column);
  if (name == "gt" || name == "greaterthan" || name == ">") return less_than(need_arg(), v, a.line, a.column);
  if (name == "le" || name == "<=") return !less_than(need_arg(), v, a.line, a.column);
  if (name == "ge" || name == ">=") return !less_than(v, need_arg(), a.line, a.column);
  if (name == "in") return contains(need_arg(), v, a.line, a.column);
  if (name == "escaped") return false;
  fail("unknown test '" + name + "'", a);
}

void add_globals(Dict& globals, std::function<std::tm()> now) {
  globals.set("raise_exception", Value::function([](CallArgs& a) -> Value {
    Error e(a.positional.empty() ? std::string() : a.positional[0].str(), a.line, a.column);
    e.raised_by_template = true;
    throw e;
  }));
  globals.set("strftime_now", Value::function([now](CallArgs& a) -> Value {
    const Value* fmt = a.get("format", 0);
    if (!fmt || !fmt->is_string()) fail("strftime_now expects a format string", a);
    std::tm tm{};
    if (now) {
      tm = now();
    } else {
      std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
      localtime_r(&t, &tm);
    }
    char buf[512];
    size_t n = std::strftime(buf, sizeof(buf), fmt->s.c_str(), &tm);
    return Value::string(std::string(buf, n));
  }));
  globals.set("range", Value::function([](CallArgs& a) -> Value {
    int64_t start = 0, stop = 0, step = 1;
    for (const Value& v : a.positional) {
      if (v.type != Value::Type::kInt) fail("range() arguments must be integers", a);
    }
    if (a.positional.size() == 1) {
      stop = a.positional[0].i;
    } else if (a.positional.size() >= 2) {
      start = a.positional[0].i;
      stop = a.positional[1].i;
      if (a.positional.size() >= 3) step = a.positional[2].i;
    } else {
      fail("range expected at least 1 argument", a);
    }
    if (step == 0) fail("range() arg 3 must not be zero", a);
    List out;
    for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
      if (out.size() > 10'000'000) fail("range too big", a);
      out.push_back(Value::integer(k));
    }
    return Value::make_list(std::move(out));
  }));
  auto make_mapping = [](CallArgs& a, bool ns) -> Value {
    Dict d;
    for (const Value& p : a.positional) {
      if (!p.is_mapping()) fail("expected a mapping argument", a);
      for (const auto& [k, v] : p.dict->items) d.set(k, v);
    }
    for (const auto& [k, v] : a.keyword) {
      if (ns && !k.empty() && k[0] == '_') {
        fail("Chat templates cannot store underscore-prefixed attributes on a namespace, but got '" + k +
                 "'. Please rename the attribute.", a);
      }
      d.set(k, v);
    }
    return ns ? Value::make_namespace(std::move(d)) : Value::make_dict(std::move(d));
  };
  globals.set("namespace", Value::function([make_mapping](CallArgs& a) { return make_mapping(a, true); }));
  globals.set("dict", Value::function([make_mapping](CallArgs& a) { return make_mapping(a, false); }));
}

}  // namespace llmctl::tokenizer::jinja
