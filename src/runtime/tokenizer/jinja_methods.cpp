// Methods of str, dict and list values (Python's, as the sandbox allows them),
// and the iteration / containment / ordering helpers they share.
#include <algorithm>

#include "runtime/tokenizer/jinja_builtins.h"

namespace llmctl::tokenizer::jinja {
namespace {

bool is_py_space(uint32_t c) { return c == ' ' || (c >= 0x09 && c <= 0x0D) || c == 0x1C || c == 0x1D || c == 0x1E || c == 0x1F || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000; }

const std::string& need_string(const Value* v, const char* what, const CallArgs& a) {
  if (!v || !v->is_string()) throw Error(std::string(what) + " must be a string", a.line, a.column);
  return v->s;
}

std::vector<std::string> split_whitespace(const std::string& s, int64_t maxsplit) {
  std::vector<uint32_t> cps = utf8_decode(s);
  std::vector<std::string> out;
  size_t k = 0;
  while (k < cps.size()) {
    while (k < cps.size() && is_py_space(cps[k])) ++k;
    if (k >= cps.size()) break;
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
      size_t end = cps.size();
      while (end > k && is_py_space(cps[end - 1])) --end;
      out.push_back(utf8_encode(std::vector<uint32_t>(cps.begin() + static_cast<long>(k), cps.begin() + static_cast<long>(end))));
      break;
    }
    size_t start = k;
    while (k < cps.size() && !is_py_space(cps[k])) ++k;
    out.push_back(utf8_encode(std::vector<uint32_t>(cps.begin() + static_cast<long>(start), cps.begin() + static_cast<long>(k))));
  }
  return out;
}

std::string ascii_case(std::string s, bool upper) {
  for (char& c : s) {
    if (upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
    if (!upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return s;
}

Value string_method(const std::string& s, const std::string& name, CallArgs& a) {
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const Value* chars = a.get("chars", 0);
    char which = name == "strip" ? 'b' : name[0];
    return Value::string(strip_chars(s, chars && !chars->is_none() ? chars : nullptr, which));
  }
  if (name == "split" || name == "rsplit") {
    const Value* sep = a.get("sep", 0);
    const Value* maxv = a.get("maxsplit", 1);
    int64_t maxsplit = maxv && maxv->type == Value::Type::kInt ? maxv->i : -1;
    List out;
    if (!sep || sep->is_none()) {
      if (name == "rsplit" && maxsplit >= 0) throw Error("rsplit with maxsplit is not supported", a.line, a.column);
      for (auto& part : split_whitespace(s, maxsplit)) out.push_back(Value::string(part));
      return Value::make_list(std::move(out));
    }
    const std::string& d = need_string(sep, "split separator", a);
    if (d.empty()) throw Error("empty separator", a.line, a.column);
    if (name == "rsplit" && maxsplit >= 0) {
      std::vector<std::string> parts;
      std::string rest = s;
      while (maxsplit-- > 0) {
        size_t p = rest.rfind(d);
        if (p == std::string::npos) break;
        parts.insert(parts.begin(), rest.substr(p + d.size()));
        rest.resize(p);
      }
      parts.insert(parts.begin(), rest);
      for (auto& part : parts) out.push_back(Value::string(part));
      return Value::make_list(std::move(out));
    }
    size_t start = 0;
    while (true) {
      size_t p = s.find(d, start);
      if (p == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit)) {
        out.push_back(Value::string(s.substr(start)));
        break;
      }
      out.push_back(Value::string(s.substr(start, p - start)));
      start = p + d.size();
    }
    return Value::make_list(std::move(out));
  }
  if (name == "startswith" || name == "endswith") {
    const Value* arg = a.get("prefix", 0);
    if (!arg) throw Error(name + "() takes at least 1 argument", a.line, a.column);
    List options = arg->is_list() ? *arg->list : List{*arg};
    for (const Value& o : options) {
      const std::string& p = need_string(&o, (name + " argument").c_str(), a);
      bool hit = p.size() <= s.size() &&
                 (name == "startswith" ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0);
      if (hit) return Value::boolean(true);
    }
    return Value::boolean(false);
  }
  if (name == "replace") {
    const std::string& from = need_string(a.get("old", 0), "replace() old", a);
    const std::string& to = need_string(a.get("new", 1), "replace() new", a);
    const Value* countv = a.get("count", 2);
    int64_t count = countv && countv->type == Value::Type::kInt ? countv->i : -1;
    std::string out;
    if (from.empty()) {
      // Python inserts `to` between every character (and at both ends).
      std::vector<uint32_t> cps = utf8_decode(s);
      int64_t done = 0;
      for (uint32_t cp : cps) {
        if (count < 0 || done < count) { out += to; ++done; }
        utf8_append(out, cp);
      }
      if (count < 0 || done < count) out += to;
      return Value::string(out);
    }
    size_t start = 0;
    int64_t done = 0;
    while (count < 0 || done < count) {
      size_t p = s.find(from, start);
      if (p == std::string::npos) break;
      out += s.substr(start, p - start) + to;
      start = p + from.size();
      ++done;
    }
    out += s.substr(start);
    return Value::string(out);
  }
  if (name == "upper" || name == "lower") return Value::string(ascii_case(s, name == "upper"));
  if (name == "title" || name == "capitalize") {
    std::string out = ascii_case(s, false);
    bool at_start = true;
    for (char& c : out) {
      bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      if (alpha && at_start && c >= 'a') c = static_cast<char>(c - 32);
      if (name == "title") at_start = !alpha;
      else at_start = false;
    }
    return Value::string(out);
  }
  if (name == "find" || name == "rfind" || name == "count" || name == "index") {
    const std::string& sub = need_string(a.get("sub", 0), (name + "() argument").c_str(), a);
    if (name == "count") {
      if (sub.empty()) return Value::integer(static_cast<int64_t>(utf8_decode(s).size()) + 1);
      int64_t n = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      return Value::integer(n);
    }
    size_t p = name == "rfind" ? s.rfind(sub) : s.find(sub);
    if (p == std::string::npos) {
      if (name == "index") throw Error("substring not found", a.line, a.column);
      return Value::integer(-1);
    }
    return Value::integer(static_cast<int64_t>(utf8_decode(s.substr(0, p)).size()));
  }
  if (name == "join") {
    const Value* items = a.get("iterable", 0);
    if (!items) throw Error("join() takes exactly one argument", a.line, a.column);
    std::string out;
    bool first = true;
    for (const Value& v : iterate(*items, a.line, a.column)) {
      if (!v.is_string()) throw Error("sequence item: expected str instance, " + v.type_name() + " found", a.line, a.column);
      if (!first) out += s;
      first = false;
      out += v.s;
    }
    return Value::string(out);
  }
  if (name == "splitlines") {
    List out;
    std::string line;
    for (size_t k = 0; k < s.size(); ++k) {
      if (s[k] == '\n' || s[k] == '\r') {
        out.push_back(Value::string(line));
        line.clear();
        if (s[k] == '\r' && k + 1 < s.size() && s[k + 1] == '\n') ++k;
      } else {
        line += s[k];
      }
    }
    if (!line.empty()) out.push_back(Value::string(line));
    return Value::make_list(std::move(out));
  }
  if (name == "isdigit" || name == "isalpha" || name == "isspace" || name == "isupper" || name == "islower") {
    if (s.empty()) return Value::boolean(false);
    bool all = true, cased = false;
    for (char c : s) {
      bool up = c >= 'A' && c <= 'Z', low = c >= 'a' && c <= 'z';
      if (name == "isdigit") all = all && c >= '0' && c <= '9';
      if (name == "isalpha") all = all && (up || low);
      if (name == "isspace") all = all && is_py_space(static_cast<unsigned char>(c));
      if (name == "isupper") { all = all && !low; cased = cased || up; }
      if (name == "islower") { all = all && !up; cased = cased || low; }
    }
    if (name == "isupper" || name == "islower") all = all && cased;
    return Value::boolean(all);
  }
  throw Error("unsupported string method '" + name + "'", a.line, a.column);
}

bool is_string_method(const std::string& n) {
  static const char* kNames[] = {"strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith",
                                 "replace", "upper", "lower", "title", "capitalize", "find", "rfind", "count",
                                 "index", "join", "splitlines", "isdigit", "isalpha", "isspace", "isupper",
                                 "islower"};
  return std::find_if(std::begin(kNames), std::end(kNames), [&](const char* k) { return n == k; }) != std::end(kNames);
}

}  // namespace

std::string strip_chars(const std::string& s, const Value* chars, char which) {
  std::vector<uint32_t> cps = utf8_decode(s);
  std::vector<uint32_t> set;
  if (chars && chars->is_string()) set = utf8_decode(chars->s);
  auto strip_it = [&](uint32_t c) {
    return chars ? std::find(set.begin(), set.end(), c) != set.end() : is_py_space(c);
  };
  size_t b = 0, e = cps.size();
  if (which != 'r') {
    while (b < e && strip_it(cps[b])) ++b;
  }
  if (which != 'l') {
    while (e > b && strip_it(cps[e - 1])) --e;
  }
  return utf8_encode(std::vector<uint32_t>(cps.begin() + static_cast<long>(b), cps.begin() + static_cast<long>(e)));
}

Value get_method(const Value& obj, const std::string& name, int line, int column) {
  if (obj.is_string() && is_string_method(name)) {
    std::string s = obj.s;
    return Value::function([s, name](CallArgs& a) { return string_method(s, name, a); });
  }
  if (obj.type == Value::Type::kDict) {
    Value self = obj;
    if (name == "items" || name == "keys" || name == "values") {
      return Value::function([self, name](CallArgs&) {
        List out;
        for (const auto& [k, v] : self.dict->items) {
          if (name == "items") out.push_back(Value::make_list({Value::string(k), v}, true));
          else if (name == "keys") out.push_back(Value::string(k));
          else out.push_back(v);
        }
        return Value::make_list(std::move(out));
      });
    }
    if (name == "get") {
      return Value::function([self](CallArgs& a) {
        const Value* key = a.get("key", 0);
        const Value* def = a.get("default", 1);
        if (key && key->is_string()) {
          if (const Value* v = self.dict->find(key->s)) return *v;
        }
        return def ? *def : Value::none();
      });
    }
    if (name == "copy") return Value::function([self](CallArgs&) { return Value::make_dict(*self.dict); });
  }
  if (obj.is_list() && (name == "index" || name == "count")) {
    Value self = obj;
    return Value::function([self, name](CallArgs& a) {
      const Value* x = a.get("value", 0);
      if (!x) throw Error(name + "() takes exactly one argument", a.line, a.column);
      int64_t n = 0;
      for (size_t k = 0; k < self.list->size(); ++k) {
        if ((*self.list)[k].equals(*x)) {
          if (name == "index") return Value::integer(static_cast<int64_t>(k));
          ++n;
        }
      }
      if (name == "index") throw Error(x->repr() + " is not in list", a.line, a.column);
      return Value::integer(n);
    });
  }
  // transformers renders with Jinja's ImmutableSandboxedEnvironment, which
  // refuses methods that modify a list or dict; so do we, with its message.
  static const char* kMutating[] = {"append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse",
                                    "update", "setdefault", "popitem"};
  if ((obj.is_list() || obj.type == Value::Type::kDict) &&
      std::find_if(std::begin(kMutating), std::end(kMutating), [&](const char* k) { return name == k; }) !=
          std::end(kMutating)) {
    std::string message = "access to attribute '" + name + "' of '" + obj.type_name() + "' object is unsafe.";
    return Value::function([message, line, column](CallArgs&) -> Value { throw Error(message, line, column); });
  }
  return Value::undefined();
}

List iterate(const Value& v, int line, int column) {
  switch (v.type) {
    case Value::Type::kUndefined: return {};
    case Value::Type::kList: return *v.list;
    case Value::Type::kDict: {
      List keys;
      for (const auto& kv : v.dict->items) keys.push_back(Value::string(kv.first));
      return keys;
    }
    case Value::Type::kString: {
      List chars;
      for (uint32_t cp : utf8_decode(v.s)) {
        std::string ch;
        utf8_append(ch, cp);
        chars.push_back(Value::string(ch));
      }
      return chars;
    }
    default: throw Error("'" + v.type_name() + "' object is not iterable", line, column);
  }
}

int64_t length_of(const Value& v, int line, int column) {
  switch (v.type) {
    case Value::Type::kUndefined: return 0;
    case Value::Type::kString: return static_cast<int64_t>(utf8_decode(v.s).size());
    case Value::Type::kList: return static_cast<int64_t>(v.list->size());
    case Value::Type::kDict:
    case Value::Type::kNamespace: return static_cast<int64_t>(v.dict->items.size());
    default: throw Error("object of type '" + v.type_name() + "' has no len()", line, column);
  }
}

bool contains(const Value& container, const Value& item, int line, int column) {
  switch (container.type) {
    case Value::Type::kUndefined: return false;
    case Value::Type::kString:
      if (!item.is_string()) {
        throw Error("'in <string>' requires string as left operand, not " + item.type_name(), line, column);
      }
      return container.s.find(item.s) != std::string::npos;
    case Value::Type::kList:
      return std::any_of(container.list->begin(), container.list->end(), [&](const Value& v) { return v.equals(item); });
    case Value::Type::kDict:
    case Value::Type::kNamespace: return item.is_string() && container.dict->find(item.s) != nullptr;
    default: throw Error("argument of type '" + container.type_name() + "' is not iterable", line, column);
  }
}

bool less_than(const Value& a, const Value& b, int line, int column) {
  if (a.is_number() && b.is_number()) {
    if (a.type == Value::Type::kInt && b.type == Value::Type::kInt) return a.i < b.i;
    return a.as_double() < b.as_double();
  }
  if (a.is_string() && b.is_string()) return a.s < b.s;  // UTF-8 byte order is code point order
  if (a.is_list() && b.is_list()) {
    size_t n = std::min(a.list->size(), b.list->size());
    for (size_t k = 0; k < n; ++k) {
      if (!(*a.list)[k].equals((*b.list)[k])) return less_than((*a.list)[k], (*b.list)[k], line, column);
    }
    return a.list->size() < b.list->size();
  }
  if (a.is_undefined() || b.is_undefined()) {
    const Value& u = a.is_undefined() ? a : b;
    throw Error(u.s.empty() ? "value is undefined" : u.s, line, column);
  }
  throw Error("'<' not supported between instances of '" + a.type_name() + "' and '" + b.type_name() + "'", line, column);
}

}  // namespace llmctl::tokenizer::jinja
