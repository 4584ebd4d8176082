#include "runtime/tokenizer/jinja_percent_format.h"

#include <cmath>
#include <cstdio>
#include <limits>

namespace llmctl::tokenizer::jinja {
namespace {

struct Spec {
  bool left = false, plus = false, space = false, alt = false, zero = false;
  int width = -1;
  int precision = -1;
};

size_t count_code_points(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Pads `body` (sign and prefix already in it) to the width.
std::string pad(std::string body, const Spec& spec, bool numeric) {
  const size_t len = count_code_points(body);
  if (spec.width < 0 || len >= static_cast<size_t>(spec.width)) return body;
  const size_t fill = static_cast<size_t>(spec.width) - len;
  if (spec.left) return body + std::string(fill, ' ');
  if (numeric && spec.zero) {
    // Zeros go after the sign and any 0x / 0o prefix.
    size_t at = 0;
    if (at < body.size() && (body[at] == '-' || body[at] == '+' || body[at] == ' ')) ++at;
    if (at + 1 < body.size() && body[at] == '0' && (body[at + 1] == 'x' || body[at + 1] == 'X' || body[at + 1] == 'o')) {
      at += 2;
    }
    if (body.find_first_of("0123456789", at) == at) return body.insert(at, fill, '0');
  }
  return std::string(fill, ' ') + body;
}

std::string sign_of(bool negative, const Spec& spec) {
  if (negative) return "-";
  if (spec.plus) return "+";
  if (spec.space) return " ";
  return "";
}

class Formatter {
 public:
  Formatter(const std::string& format, const Value& args, int line, int column)
      : format_(format), args_(args), line_(line), column_(column) {
    if (args.is_list() && args.is_tuple) {
      tuple_ = args.list.get();
    } else if (args.is_mapping()) {
      mapping_ = args.dict.get();
    }
  }

  std::string run() {
    std::string out;
    size_t i = 0;
    while (i < format_.size()) {
      const size_t pct = format_.find('%', i);
      if (pct == std::string::npos) {
        out.append(format_, i, std::string::npos);
        break;
      }
      out.append(format_, i, pct - i);
      i = pct + 1;
      out += conversion(i);
    }
    const size_t total = tuple_ ? tuple_->size() : 1;
    if (!used_mapping_key_ && next_ < total && !(mapping_ && next_ == 0)) {
      fail("not all arguments converted during string formatting");
    }
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& message) const { throw Error(message, line_, column_); }

  const Value& next_arg() {
    if (tuple_) {
      if (next_ >= tuple_->size()) fail("not enough arguments for format string");
      return (*tuple_)[next_++];
    }
    if (next_ > 0) fail("not enough arguments for format string");
    ++next_;
    return args_;
  }

  int star() {
    const Value& v = next_arg();
    if (v.type != Value::Type::kInt && v.type != Value::Type::kBool) fail("* wants int");
    const int64_t x = v.type == Value::Type::kBool ? v.b : v.i;
    if (x > 1 << 20 || x < -(1 << 20)) fail("width or precision too big");
    return static_cast<int>(x);
  }

  int number(size_t& i) {
    int64_t v = 0;
    while (i < format_.size() && format_[i] >= '0' && format_[i] <= '9') {
      v = v * 10 + (format_[i++] - '0');
      if (v > (1 << 20)) fail("width or precision too big");
    }
    return static_cast<int>(v);
  }

  // At the character after '%'; returns the converted text.
  std::string conversion(size_t& i) {
    auto incomplete = [&]() { fail("incomplete format"); };
    if (i >= format_.size()) incomplete();
    const Value* arg = nullptr;
    if (format_[i] == '(') {
      if (!mapping_) fail("format requires a mapping");
      int depth = 1;
      const size_t key_start = ++i;
      while (i < format_.size() && depth > 0) {
        if (format_[i] == '(') ++depth;
        if (format_[i] == ')') --depth;
        ++i;
      }
      if (depth > 0) fail("incomplete format key");
      const std::string key = format_.substr(key_start, i - 1 - key_start);
      arg = mapping_->find(key);
      if (!arg) fail("KeyError: '" + key + "'");
      used_mapping_key_ = true;
    }
    Spec spec;
    for (; i < format_.size(); ++i) {
      const char c = format_[i];
      if (c == '-') spec.left = true;
      else if (c == '+') spec.plus = true;
      else if (c == ' ') spec.space = true;
      else if (c == '#') spec.alt = true;
      else if (c == '0') spec.zero = true;
      else break;
    }
    if (i < format_.size() && format_[i] == '*') {
      ++i;
      spec.width = star();
      if (spec.width < 0) {
        spec.left = true;
        spec.width = -spec.width;
      }
    } else {
      spec.width = number(i);
      if (spec.width == 0) spec.width = -1;
    }
    if (i < format_.size() && format_[i] == '.') {
      ++i;
      if (i < format_.size() && format_[i] == '*') {
        ++i;
        spec.precision = std::max(0, star());
      } else {
        spec.precision = number(i);
      }
    }
    while (i < format_.size() && (format_[i] == 'h' || format_[i] == 'l' || format_[i] == 'L')) ++i;
    if (i >= format_.size()) incomplete();
    const char conv = format_[i++];
    if (conv == '%') return "%";
    if (!arg) arg = &next_arg();
    switch (conv) {
      case 's':
      case 'r':
      case 'a': {
        std::string s = conv == 's' ? arg->str() : arg->repr();
        if (spec.precision >= 0) {
          size_t cps = 0, k = 0;
          for (; k < s.size(); ++k) {
            if ((static_cast<unsigned char>(s[k]) & 0xC0) != 0x80 && cps++ == static_cast<size_t>(spec.precision)) break;
          }
          s.resize(k);
        }
        return pad(s, spec, false);
      }
      case 'c': {
        std::string s;
        if (arg->is_string()) {
          if (count_code_points(arg->s) != 1) fail("%c requires int or char");
          s = arg->s;
        } else if (arg->type == Value::Type::kInt || arg->type == Value::Type::kBool) {
          const int64_t cp = arg->type == Value::Type::kBool ? arg->b : arg->i;
          if (cp < 0 || cp > 0x10FFFF) fail("%c arg not in range(0x110000)");
          utf8_append(s, static_cast<uint32_t>(cp));
        } else {
          fail("%c requires int or char");
        }
        return pad(s, spec, false);
      }
      case 'd':
      case 'i':
      case 'u':
        return integer(*arg, spec, conv, true);
      case 'o':
      case 'x':
      case 'X':
        return integer(*arg, spec, conv, false);
      case 'e':
      case 'E':
      case 'f':
      case 'F':
      case 'g':
      case 'G':
        return floating(*arg, spec, conv);
      default: {
        char buf[96];
        std::snprintf(buf, sizeof buf, "unsupported format character '%c' (0x%x) at index %zu", conv,
                      static_cast<unsigned char>(conv), i - 1);
        fail(buf);
      }
    }
  }

  // %d accepts floats (truncated); %o %x %X want integers.
  std::string integer(const Value& v, const Spec& spec, char conv, bool real_ok) {
    bool negative = false;
    std::string digits;
    if (v.type == Value::Type::kInt || v.type == Value::Type::kBool) {
      const int64_t x = v.type == Value::Type::kBool ? v.b : v.i;
      negative = x < 0;
      const uint64_t mag = negative ? 0 - static_cast<uint64_t>(x) : static_cast<uint64_t>(x);
      char buf[32];
      std::snprintf(buf, sizeof buf, conv == 'o' ? "%llo" : conv == 'x' ? "%llx" : conv == 'X' ? "%llX" : "%llu",
                    static_cast<unsigned long long>(mag));
      digits = buf;
    } else if (v.type == Value::Type::kFloat && real_ok) {
      if (std::isnan(v.f)) fail("cannot convert float NaN to integer");
      if (std::isinf(v.f)) fail("cannot convert float infinity to integer");
      const double t = std::trunc(v.f);
      negative = t < 0;
      char buf[400];
      std::snprintf(buf, sizeof buf, "%.0f", std::fabs(t));
      digits = buf;
    } else {
      const std::string kind = real_ok ? "a real number" : "an integer";
      fail(std::string("%") + conv + " format: " + kind + " is required, not " + v.type_name());
    }
    if (spec.precision > static_cast<int>(digits.size())) {
      digits.insert(0, static_cast<size_t>(spec.precision) - digits.size(), '0');
    }
    std::string body = sign_of(negative, spec);
    if (spec.alt && (conv == 'o' || conv == 'x' || conv == 'X')) {
      body.push_back('0');
      body.push_back(conv == 'o' ? 'o' : conv);
    }
    body.append(digits);
    return pad(std::move(body), spec, true);
  }

  std::string floating(const Value& v, const Spec& spec, char conv) {
    if (!v.is_number()) fail(std::string("must be real number, not ") + v.type_name());
    const double x = v.as_double();
    if (std::isnan(x) || std::isinf(x)) {
      std::string s = std::isnan(x) ? "nan" : "inf";
      if (conv == 'E' || conv == 'F' || conv == 'G') {
        for (char& c : s) c = static_cast<char>(c - 'a' + 'A');
      }
      return pad(sign_of(std::signbit(x) && !std::isnan(x), spec) + s, spec, false);
    }
    std::string fmt = "%";
    if (spec.alt) fmt += '#';
    fmt += ".*";
    fmt += conv;
    const int precision = spec.precision < 0 ? 6 : spec.precision;
    const int size = std::snprintf(nullptr, 0, fmt.c_str(), precision, std::fabs(x));
    std::string body(static_cast<size_t>(size) + 1, '\0');
    std::snprintf(body.data(), body.size(), fmt.c_str(), precision, std::fabs(x));
    body.resize(static_cast<size_t>(size));
    return pad(sign_of(std::signbit(x), spec) + body, spec, true);
  }

  const std::string& format_;
  const Value& args_;
  const List* tuple_ = nullptr;
  const Dict* mapping_ = nullptr;
  size_t next_ = 0;
  bool used_mapping_key_ = false;
  int line_, column_;
};

}  // namespace

std::string percent_format(const std::string& format, const Value& args, int line, int column) {
  return Formatter(format, args, line, column).run();
}

}  // namespace llmctl::tokenizer::jinja
