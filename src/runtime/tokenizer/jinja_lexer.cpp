#include "runtime/tokenizer/jinja_lexer.h"

#include <algorithm>
#include <cstring>

#include "runtime/tokenizer/jinja_value.h"

namespace llmctl::tokenizer::jinja {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

class Lexer {
 public:
  Lexer(std::string source, const LexOptions& options) : src_(std::move(source)), opts_(options) {
    line_starts_.push_back(0);
    for (size_t k = 0; k < src_.size(); ++k) {
      if (src_[k] == '\n') line_starts_.push_back(k + 1);
    }
  }

  std::vector<Segment> run() {
    size_t pos = 0;
    bool line_starting = true;
    while (pos < src_.size()) {
      size_t tag = find_tag(pos);
      std::string text = src_.substr(pos, (tag == std::string::npos ? src_.size() : tag) - pos);
      if (tag == std::string::npos) {
        emit_text(std::move(text), pos);
        break;
      }
      char kind = src_[tag + 1];
      char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+') ? src_[tag + 2] : 0;
      // A '-' right before the closer belongs to the tag, not to the sign: "{{-x}}" vs "{%- ... %}".
      if (sign == '-') {
        size_t end = text.size();
        while (end > 0 && is_space(text[end - 1])) --end;
        text.resize(end);
      } else if (sign != '+' && opts_.lstrip_blocks && kind != '{') {
        size_t nl = text.rfind('\n');
        size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if ((l_pos > 0 || line_starting) && l_pos < text.size() &&
            std::all_of(text.begin() + static_cast<long>(l_pos), text.end(), is_space)) {
          text.resize(l_pos);
        }
      }
      emit_text(std::move(text), pos);
      size_t inner = tag + 2 + (sign ? 1 : 0);
      char end_sign = 0;
      if (kind == '#') {
        size_t close = src_.find("#}", inner);
        if (close == std::string::npos) fail("Missing end of comment tag", tag);
        if (close > inner && (src_[close - 1] == '-' || src_[close - 1] == '+')) end_sign = src_[close - 1];
        pos = close + 2;
      } else {
        Segment seg;
        seg.kind = kind == '{' ? Segment::Kind::kOutput : Segment::Kind::kStatement;
        set_pos(seg.line, seg.column, tag);
        pos = tokenize(inner, kind == '{' ? '}' : '%', seg.tokens, end_sign, tag);
        if (seg.kind == Segment::Kind::kStatement && seg.tokens.size() == 2 &&
            seg.tokens[0].kind == Token::Kind::kName && seg.tokens[0].text == "raw") {
          pos = lex_raw(pos, end_sign, tag);
          line_starting = pos > 0 && src_[pos - 1] == '\n';
          continue;
        }
        segments_.push_back(std::move(seg));
      }
      pos = after_tag(pos, end_sign, kind != '{');
      line_starting = pos > 0 && src_[pos - 1] == '\n';
    }
    return std::move(segments_);
  }

 private:
  [[noreturn]] void fail(const std::string& message, size_t offset) const {
    int line = 0, column = 0;
    set_pos(line, column, offset);
    throw Error(message, line, column);
  }

  void set_pos(int& line, int& column, size_t offset) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    size_t index = static_cast<size_t>(it - line_starts_.begin()) - 1;
    line = static_cast<int>(index) + 1;
    column = static_cast<int>(offset - line_starts_[index]) + 1;
  }

  size_t find_tag(size_t from) const {
    size_t k = src_.find('{', from);
    while (k != std::string::npos && k + 1 < src_.size()) {
      char c = src_[k + 1];
      if (c == '{' || c == '%' || c == '#') return k;
      k = src_.find('{', k + 1);
    }
    return std::string::npos;
  }

  void emit_text(std::string text, size_t offset) {
    if (text.empty()) return;
    Segment seg;
    seg.kind = Segment::Kind::kText;
    seg.text = std::move(text);
    set_pos(seg.line, seg.column, offset);
    segments_.push_back(std::move(seg));
  }

  // After a tag's closer: "-" strips all following whitespace; a plain block or
  // comment closer eats one newline when trim_blocks is on.
  size_t after_tag(size_t pos, char end_sign, bool is_block) const {
    if (end_sign == '-') {
      while (pos < src_.size() && is_space(src_[pos])) ++pos;
    } else if (end_sign != '+' && is_block && opts_.trim_blocks && pos < src_.size() && src_[pos] == '\n') {
      ++pos;
    }
    return pos;
  }

  // {% raw %}...{% endraw %}: the text in between is emitted verbatim.
  size_t lex_raw(size_t pos, char raw_end_sign, size_t tag) {
    pos = after_tag(pos, raw_end_sign, true);
    size_t search = pos;
    while (true) {
      size_t open = src_.find("{%", search);
      if (open == std::string::npos) fail("Missing end of raw directive", tag);
      size_t k = open + 2;
      char sign = 0;
      if (k < src_.size() && (src_[k] == '-' || src_[k] == '+')) sign = src_[k++];
      while (k < src_.size() && is_space(src_[k])) ++k;
      if (src_.compare(k, 6, "endraw") != 0) {
        search = open + 2;
        continue;
      }
      k += 6;
      while (k < src_.size() && is_space(src_[k])) ++k;
      char end_sign = 0;
      if (k < src_.size() && (src_[k] == '-' || src_[k] == '+')) end_sign = src_[k++];
      if (src_.compare(k, 2, "%}") != 0) fail("Missing end of raw directive", tag);
      std::string text = src_.substr(pos, open - pos);
      if (sign == '-') {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      }
      emit_text(std::move(text), pos);
      return after_tag(k + 2, end_sign, true);
    }
  }

  // Tokenizes from `pos` up to the tag closer ("}}" or "%}") at bracket depth 0.
  // Returns the offset just past the closer; sets end_sign to '-' / '+' / 0.
  size_t tokenize(size_t pos, char closer, std::vector<Token>& out, char& end_sign, size_t tag) {
    int depth = 0;
    while (true) {
      while (pos < src_.size() && is_space(src_[pos])) ++pos;
      if (pos >= src_.size()) fail(closer == '}' ? "unexpected end of template, expected '}}'"
                                                : "unexpected end of template, expected '%}'", tag);
      if (depth == 0) {
        for (char sign : {'-', '+', '\0'}) {
          if (sign == '+' && closer == '}') continue;
          size_t k = pos;
          if (sign) {
            if (src_[k] != sign) continue;
            ++k;
          }
          if (k + 1 < src_.size() && src_[k] == closer && src_[k + 1] == '}') {
            Token end;
            end.kind = Token::Kind::kEnd;
            set_pos(end.line, end.column, pos);
            out.push_back(end);
            end_sign = sign;
            return k + 2;
          }
        }
      }
      Token t;
      set_pos(t.line, t.column, pos);
      char c = src_[pos];
      if (is_name_start(c)) {
        size_t k = pos;
        while (k < src_.size() && (is_name_start(src_[k]) || is_digit(src_[k]))) ++k;
        t.kind = Token::Kind::kName;
        t.text = src_.substr(pos, k - pos);
        pos = k;
      } else if (is_digit(c)) {
        pos = lex_number(pos, t, !out.empty() && out.back().kind == Token::Kind::kOp && out.back().text == ".");
      } else if (c == '\'' || c == '"') {
        pos = lex_string(pos, t);
      } else {
        static const char* kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
        t.kind = Token::Kind::kOp;
        for (const char* op : kTwo) {
          if (src_.compare(pos, 2, op) == 0) t.text = op;
        }
        if (t.text.empty()) {
          if (std::strchr("+-*/%~<>=()[]{},.:|!", c) == nullptr || c == '!') {
            fail(std::string("unexpected char '") + c + "'", pos);
          }
          t.text = std::string(1, c);
        }
        if (t.text == "(" || t.text == "[" || t.text == "{") ++depth;
        if (t.text == ")" || t.text == "]" || t.text == "}") {
          if (depth == 0) fail("unexpected '" + t.text + "'", pos);
          --depth;
        }
        pos += t.text.size();
      }
      out.push_back(std::move(t));
    }
  }

  size_t lex_number(size_t pos, Token& t, bool after_dot) {
    size_t k = pos;
    auto digits = [&] {
      while (k < src_.size() && (is_digit(src_[k]) || (src_[k] == '_' && k + 1 < src_.size() && is_digit(src_[k + 1])))) ++k;
    };
    digits();
    bool is_float = false;
    if (!after_dot && k + 1 < src_.size() && src_[k] == '.' && is_digit(src_[k + 1])) {
      is_float = true;
      ++k;
      digits();
    }
    if (!after_dot && k < src_.size() && (src_[k] == 'e' || src_[k] == 'E')) {
      size_t e = k + 1;
      if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
      if (e < src_.size() && is_digit(src_[e])) {
        is_float = true;
        k = e;
        digits();
      }
    }
    std::string text;
    for (size_t m = pos; m < k; ++m) {
      if (src_[m] != '_') text += src_[m];
    }
    if (is_float) {
      t.kind = Token::Kind::kFloat;
      t.float_value = std::stod(text);
    } else {
      t.kind = Token::Kind::kInt;
      try {
        t.int_value = std::stoll(text);
      } catch (const std::exception&) {
        fail("integer literal out of range: " + text, pos);
      }
    }
    t.text = text;
    return k;
  }

  static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // A Python string literal with its escapes (\n, \t, \xNN, \uNNNN, ...).
  size_t lex_string(size_t pos, Token& t) {
    char quote = src_[pos];
    size_t k = pos + 1;
    std::string value;
    while (true) {
      if (k >= src_.size()) fail("unterminated string literal", pos);
      char c = src_[k];
      if (c == quote) break;
      if (c != '\\' || k + 1 >= src_.size()) {
        value += c;
        ++k;
        continue;
      }
      char e = src_[k + 1];
      k += 2;
      switch (e) {
        case 'n': value += '\n'; break;
        case 't': value += '\t'; break;
        case 'r': value += '\r'; break;
        case '\\': value += '\\'; break;
        case '\'': value += '\''; break;
        case '"': value += '"'; break;
        case 'a': value += '\a'; break;
        case 'b': value += '\b'; break;
        case 'f': value += '\f'; break;
        case 'v': value += '\v'; break;
        case '0': value += '\0'; break;
        case '\n': break;  // line continuation
        case 'x':
        case 'u':
        case 'U': {
          int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          for (int m = 0; m < n; ++m) {
            int h = k < src_.size() ? hex_value(src_[k]) : -1;
            if (h < 0) fail(std::string("truncated \\") + e + " escape in string literal", pos);
            cp = cp * 16 + static_cast<uint32_t>(h);
            ++k;
          }
          utf8_append(value, cp);
          break;
        }
        default:
          value += '\\';
          value += e;
      }
    }
    t.kind = Token::Kind::kString;
    t.text = std::move(value);
    return k + 1;
  }

  std::string src_;
  LexOptions opts_;
  std::vector<size_t> line_starts_;
  std::vector<Segment> segments_;
};

std::string normalize_newlines(const std::string& source) {
  std::string out;
  out.reserve(source.size());
  for (size_t k = 0; k < source.size(); ++k) {
    if (source[k] == '\r') {
      out += '\n';
      if (k + 1 < source.size() && source[k + 1] == '\n') ++k;
    } else {
      out += source[k];
    }
  }
  // Jinja's default keep_trailing_newline=False drops one final newline.
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

std::vector<Segment> lex_template(const std::string& source, const LexOptions& options) {
  return Lexer(normalize_newlines(source), options).run();
}

}  // namespace llmctl::tokenizer::jinja
