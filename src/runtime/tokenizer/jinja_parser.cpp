#include "runtime/tokenizer/jinja_parser.h"

#include <set>

namespace llmctl::tokenizer::jinja {
namespace {

// Tokens of one tag, with look-ahead.
class TokenStream {
 public:
  explicit TokenStream(const std::vector<Token>& tokens) : tokens_(tokens) {}

  const Token& peek(size_t ahead = 0) const {
    size_t k = std::min(pos_ + ahead, tokens_.size() - 1);
    return tokens_[k];
  }
  const Token& next() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }
  bool is_op(const char* op, size_t ahead = 0) const {
    const Token& t = peek(ahead);
    return t.kind == Token::Kind::kOp && t.text == op;
  }
  bool is_name(const char* name, size_t ahead = 0) const {
    const Token& t = peek(ahead);
    return t.kind == Token::Kind::kName && t.text == name;
  }
  bool at_end() const { return peek().kind == Token::Kind::kEnd; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  [[noreturn]] void fail(const std::string& message) const {
    throw Error(message, peek().line, peek().column);
  }
  std::string describe() const {
    const Token& t = peek();
    switch (t.kind) {
      case Token::Kind::kEnd: return "end of tag";
      case Token::Kind::kString: return "string literal";
      default: return "'" + t.text + "'";
    }
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail(std::string("expected '") + op + "', got " + describe());
  }
  std::string expect_name() {
    if (peek().kind != Token::Kind::kName) fail("expected a name, got " + describe());
    return next().text;
  }
  void expect_end() {
    if (!at_end()) fail("expected end of tag, got " + describe());
  }

 private:
  const std::vector<Token>& tokens_;
  size_t pos_ = 0;
};

ExprPtr make(ExprKind kind, const Token& at) {
  auto e = std::make_shared<Expr>();
  e->kind = kind;
  e->line = at.line;
  e->column = at.column;
  return e;
}

ExprPtr make_binary(const std::string& op, ExprPtr left, ExprPtr right, const Token& at) {
  ExprPtr e = make(ExprKind::kBinary, at);
  e->name = op;
  e->args = {std::move(left), std::move(right)};
  return e;
}

class ExprParser {
 public:
  explicit ExprParser(TokenStream& ts) : ts_(ts) {}

  ExprPtr expression(bool with_condexpr = true) { return with_condexpr ? condexpr() : or_expr(); }

  // expr [, expr ...] -> a tuple when there is a comma (as in {% set a = 1, 2 %}).
  ExprPtr tuple(bool with_condexpr = true) {
    const Token& at = ts_.peek();
    ExprPtr first = expression(with_condexpr);
    if (!ts_.is_op(",")) return first;
    ExprPtr t = make(ExprKind::kTuple, at);
    t->args.push_back(first);
    while (ts_.skip_op(",")) {
      if (ts_.at_end() || ts_.is_name("if") || ts_.is_op(")")) break;
      t->args.push_back(expression(with_condexpr));
    }
    return t;
  }

  void call_args(ExprPtr& call) {
    // '(' already consumed; call->args[0] is the callee (or the filter's input).
    bool first = true;
    while (!ts_.skip_op(")")) {
      if (!first) {
        ts_.expect_op(",");
        if (ts_.skip_op(")")) break;
      }
      first = false;
      if (ts_.is_op("*") || ts_.is_op("**")) ts_.fail("*args / **kwargs in calls are not supported");
      if (ts_.peek().kind == Token::Kind::kName && ts_.is_op("=", 1)) {
        std::string key = ts_.next().text;
        ts_.next();
        call->kwargs.emplace_back(key, expression());
      } else {
        if (!call->kwargs.empty()) ts_.fail("positional argument follows keyword argument");
        call->args.push_back(expression());
      }
    }
  }

 private:
  ExprPtr condexpr() {
    ExprPtr e = or_expr();
    while (ts_.is_name("if")) {
      const Token& at = ts_.next();
      ExprPtr cond = or_expr();
      ExprPtr otherwise;
      if (ts_.skip_name("else")) otherwise = condexpr();
      ExprPtr c = make(ExprKind::kConditional, at);
      c->args = {e, cond, otherwise};
      e = c;
    }
    return e;
  }

  ExprPtr or_expr() {
    ExprPtr e = and_expr();
    while (ts_.is_name("or")) {
      const Token& at = ts_.next();
      e = make_binary("or", e, and_expr(), at);
    }
    return e;
  }

  ExprPtr and_expr() {
    ExprPtr e = not_expr();
    while (ts_.is_name("and")) {
      const Token& at = ts_.next();
      e = make_binary("and", e, not_expr(), at);
    }
    return e;
  }

  ExprPtr not_expr() {
    if (ts_.is_name("not")) {
      const Token& at = ts_.next();
      ExprPtr e = make(ExprKind::kUnary, at);
      e->name = "not";
      e->args = {not_expr()};
      return e;
    }
    return compare();
  }

  ExprPtr compare() {
    ExprPtr e = math1();
    ExprPtr result;
    // Chained comparisons (a < b < c) mean (a < b) and (b < c).
    while (true) {
      const Token& at = ts_.peek();
      std::string op;
      if (at.kind == Token::Kind::kOp &&
          (at.text == "==" || at.text == "!=" || at.text == "<" || at.text == "<=" || at.text == ">" || at.text == ">=")) {
        op = at.text;
        ts_.next();
      } else if (ts_.is_name("in")) {
        op = "in";
        ts_.next();
      } else if (ts_.is_name("not") && ts_.is_name("in", 1)) {
        op = "not in";
        ts_.next();
        ts_.next();
      } else {
        break;
      }
      ExprPtr right = math1();
      ExprPtr cmp = make_binary(op, e, right, at);
      result = result ? make_binary("and", result, cmp, at) : cmp;
      e = right;
    }
    return result ? result : e;
  }

  ExprPtr math1() {
    ExprPtr e = concat();
    while (ts_.is_op("+") || ts_.is_op("-")) {
      const Token& at = ts_.next();
      e = make_binary(at.text, e, concat(), at);
    }
    return e;
  }

  ExprPtr concat() {
    ExprPtr e = math2();
    while (ts_.is_op("~")) {
      const Token& at = ts_.next();
      e = make_binary("~", e, math2(), at);
    }
    return e;
  }

  ExprPtr math2() {
    ExprPtr e = pow();
    while (ts_.is_op("*") || ts_.is_op("/") || ts_.is_op("//") || ts_.is_op("%")) {
      const Token& at = ts_.next();
      e = make_binary(at.text, e, pow(), at);
    }
    return e;
  }

  ExprPtr pow() {
    ExprPtr e = unary(true);
    while (ts_.is_op("**")) {
      const Token& at = ts_.next();
      e = make_binary("**", e, unary(true), at);
    }
    return e;
  }

  ExprPtr unary(bool with_filter) {
    ExprPtr e;
    if (ts_.is_op("-") || ts_.is_op("+")) {
      const Token& at = ts_.next();
      e = make(ExprKind::kUnary, at);
      e->name = at.text;
      e->args = {unary(false)};
    } else {
      e = primary();
    }
    e = postfix(e);
    if (with_filter) e = filter_expr(e);
    return e;
  }

  ExprPtr primary() {
    const Token& t = ts_.peek();
    switch (t.kind) {
      case Token::Kind::kName: {
        ts_.next();
        ExprPtr e = make(ExprKind::kLiteral, t);
        if (t.text == "true" || t.text == "True") {
          e->literal = Value::boolean(true);
        } else if (t.text == "false" || t.text == "False") {
          e->literal = Value::boolean(false);
        } else if (t.text == "none" || t.text == "None") {
          e->literal = Value::none();
        } else {
          e->kind = ExprKind::kName;
          e->name = t.text;
        }
        return e;
      }
      case Token::Kind::kString: {
        ts_.next();
        std::string s = t.text;
        while (ts_.peek().kind == Token::Kind::kString) s += ts_.next().text;  // "a" "b" == "ab"
        ExprPtr e = make(ExprKind::kLiteral, t);
        e->literal = Value::string(std::move(s));
        return e;
      }
      case Token::Kind::kInt: {
        ts_.next();
        ExprPtr e = make(ExprKind::kLiteral, t);
        e->literal = Value::integer(t.int_value);
        return e;
      }
      case Token::Kind::kFloat: {
        ts_.next();
        ExprPtr e = make(ExprKind::kLiteral, t);
        e->literal = Value::number(t.float_value);
        return e;
      }
      case Token::Kind::kOp:
        if (t.text == "(") {
          ts_.next();
          if (ts_.skip_op(")")) {
            ExprPtr e = make(ExprKind::kTuple, t);
            return e;
          }
          ExprPtr first = expression();
          if (ts_.skip_op(")")) return first;
          ExprPtr e = make(ExprKind::kTuple, t);
          e->args.push_back(first);
          while (ts_.skip_op(",")) {
            if (ts_.is_op(")")) break;
            e->args.push_back(expression());
          }
          ts_.expect_op(")");
          return e;
        }
        if (t.text == "[") {
          ts_.next();
          ExprPtr e = make(ExprKind::kList, t);
          while (!ts_.skip_op("]")) {
            if (!e->args.empty()) {
              ts_.expect_op(",");
              if (ts_.skip_op("]")) break;
            }
            e->args.push_back(expression());
          }
          return e;
        }
        if (t.text == "{") {
          ts_.next();
          ExprPtr e = make(ExprKind::kDict, t);
          while (!ts_.skip_op("}")) {
            if (!e->args.empty()) {
              ts_.expect_op(",");
              if (ts_.skip_op("}")) break;
            }
            e->args.push_back(expression());
            ts_.expect_op(":");
            e->args.push_back(expression());
          }
          return e;
        }
        break;
      case Token::Kind::kEnd: ts_.fail("unexpected end of tag, expected an expression");
    }
    ts_.fail("unexpected " + ts_.describe());
  }

  ExprPtr postfix(ExprPtr e) {
    while (true) {
      if (ts_.is_op(".")) {
        const Token& at = ts_.next();
        const Token& t = ts_.peek();
        if (t.kind == Token::Kind::kName) {
          ExprPtr a = make(ExprKind::kAttr, at);
          a->name = ts_.next().text;
          a->args = {e};
          e = a;
        } else if (t.kind == Token::Kind::kInt) {
          ExprPtr index = make(ExprKind::kLiteral, t);
          index->literal = Value::integer(ts_.next().int_value);
          ExprPtr a = make(ExprKind::kItem, at);
          a->args = {e, index};
          e = a;
        } else {
          ts_.fail("expected an attribute name after '.', got " + ts_.describe());
        }
      } else if (ts_.is_op("[")) {
        e = subscript(e);
      } else if (ts_.is_op("(")) {
        const Token& at = ts_.next();
        ExprPtr c = make(ExprKind::kCall, at);
        c->line = e->line;  // errors in a call point at the callee's name
        c->column = e->column;
        c->args = {e};
        call_args(c);
        e = c;
      } else {
        return e;
      }
    }
  }

  ExprPtr subscript(ExprPtr target) {
    const Token& at = ts_.next();  // '['
    ExprPtr parts[3];
    int part = 0;
    bool is_slice = false;
    while (true) {
      if (ts_.is_op(":")) {
        ts_.next();
        is_slice = true;
        if (++part > 2) ts_.fail("too many ':' in slice");
        continue;
      }
      if (ts_.skip_op("]")) break;
      if (parts[part]) ts_.fail("expected ':' or ']', got " + ts_.describe());
      parts[part] = expression();
    }
    if (!is_slice) {
      if (!parts[0]) ts_.fail("empty subscript");
      ExprPtr e = make(ExprKind::kItem, at);
      e->args = {target, parts[0]};
      return e;
    }
    ExprPtr e = make(ExprKind::kSlice, at);
    e->args = {target, parts[0], parts[1], parts[2]};
    return e;
  }

  ExprPtr filter_expr(ExprPtr e) {
    while (true) {
      if (ts_.is_op("|")) {
        const Token& at = ts_.next();
        ExprPtr f = make(ExprKind::kFilter, at);
        f->name = ts_.expect_name();
        while (ts_.skip_op(".")) {
          f->name += '.';
          f->name += ts_.expect_name();
        }
        f->args = {e};
        if (ts_.skip_op("(")) call_args(f);
        e = f;
      } else if (ts_.is_name("is")) {
        const Token& at = ts_.next();
        ExprPtr t = make(ExprKind::kTest, at);
        t->negated = ts_.skip_name("not");
        t->name = ts_.expect_name();
        t->args = {e};
        const Token& p = ts_.peek();
        if (ts_.skip_op("(")) {
          call_args(t);
        } else if ((p.kind == Token::Kind::kName && p.text != "else" && p.text != "or" && p.text != "and" &&
                    p.text != "if" && p.text != "in" && p.text != "not" && p.text != "is") ||
                   p.kind == Token::Kind::kString || p.kind == Token::Kind::kInt || p.kind == Token::Kind::kFloat ||
                   (p.kind == Token::Kind::kOp && (p.text == "[" || p.text == "{"))) {
          t->args.push_back(postfix(primary()));
        }
        e = t;
      } else if (ts_.is_op("(")) {
        const Token& at = ts_.next();
        ExprPtr c = make(ExprKind::kCall, at);
        c->args = {e};
        call_args(c);
        e = c;
      } else {
        return e;
      }
    }
  }

  TokenStream& ts_;
};

class Parser {
 public:
  explicit Parser(const std::vector<Segment>& segments) : segs_(segments) {}

  Body parse() {
    std::string end;
    Body body = parse_body({}, end);
    return body;
  }

 private:
  // Parses nodes until a statement whose keyword is in `ends`; leaves the
  // stream on that statement's tokens (after the keyword) and names it in `end`.
  Body parse_body(const std::set<std::string>& ends, std::string& end, const Node* opener = nullptr) {
    Body body;
    while (pos_ < segs_.size()) {
      const Segment& seg = segs_[pos_++];
      auto node = std::make_shared<Node>();
      node->line = seg.line;
      node->column = seg.column;
      if (seg.kind == Segment::Kind::kText) {
        node->kind = NodeKind::kText;
        node->text = seg.text;
        body.push_back(node);
        continue;
      }
      TokenStream ts(seg.tokens);
      if (seg.kind == Segment::Kind::kOutput) {
        node->kind = NodeKind::kOutput;
        node->expr = ExprParser(ts).tuple();
        ts.expect_end();
        body.push_back(node);
        continue;
      }
      const Token& kw = ts.peek();
      if (kw.kind != Token::Kind::kName) ts.fail("expected a statement keyword, got " + ts.describe());
      if (ends.count(kw.text)) {
        end = kw.text;
        current_ = &seg;
        return body;
      }
      ts.next();
      statement(kw, ts, *node);
      body.push_back(node);
    }
    if (!ends.empty()) {
      std::string names;
      for (const auto& e : ends) names += (names.empty() ? "'" : " or '") + e + "'";
      // Point at the tag that was never closed: that is where the fix goes.
      int line = opener ? opener->line : segs_.back().line;
      int column = opener ? opener->column : segs_.back().column;
      throw Error("unexpected end of template, expected " + names + " to close this tag", line, column);
    }
    return body;
  }

  // The tag that ended the last parse_body, positioned after its keyword.
  TokenStream ended_tag() {
    TokenStream ts(current_->tokens);
    ts.next();
    return ts;
  }

  void statement(const Token& kw, TokenStream& ts, Node& node) {
    const std::string& k = kw.text;
    std::string end;
    if (k == "if") {
      node.kind = NodeKind::kIf;
      ExprPtr cond = ExprParser(ts).expression();
      ts.expect_end();
      while (true) {
        Body b = parse_body({"elif", "else", "endif"}, end, &node);
        node.branches.emplace_back(cond, std::move(b));
        TokenStream et = ended_tag();
        if (end == "elif") {
          cond = ExprParser(et).expression();
          et.expect_end();
          continue;
        }
        et.expect_end();
        if (end == "else") {
          node.else_body = parse_body({"endif"}, end, &node);
          ended_tag().expect_end();
        }
        return;
      }
    }
    if (k == "for") {
      node.kind = NodeKind::kFor;
      node.targets.push_back(ts.expect_name());
      while (ts.skip_op(",")) node.targets.push_back(ts.expect_name());
      if (!ts.skip_name("in")) ts.fail("expected 'in' in for loop, got " + ts.describe());
      ExprParser ep(ts);
      node.expr = ep.tuple(false);
      if (ts.skip_name("if")) node.condition = ExprParser(ts).expression(false);
      node.recursive = ts.skip_name("recursive");
      ts.expect_end();
      node.body = parse_body({"else", "endfor"}, end, &node);
      ended_tag().expect_end();
      if (end == "else") {
        node.else_body = parse_body({"endfor"}, end, &node);
        ended_tag().expect_end();
      }
      return;
    }
    if (k == "set") {
      node.kind = NodeKind::kSet;
      node.targets.push_back(ts.expect_name());
      if (ts.skip_op(".")) {
        node.attr = ts.expect_name();
      } else {
        while (ts.skip_op(",")) node.targets.push_back(ts.expect_name());
      }
      if (ts.skip_op("=")) {
        node.expr = ExprParser(ts).tuple();
        ts.expect_end();
        return;
      }
      // Block set: {% set x %}...{% endset %}, optionally {% set x | filter %}.
      if (node.targets.size() != 1) ts.fail("block set takes a single name");
      if (ts.is_op("|")) {
        ExprPtr placeholder = make(ExprKind::kName, ts.peek());
        placeholder->name = " body";
        ExprParser ep(ts);
        node.condition = placeholder;
        node.expr = parse_filter_chain(ts, placeholder);
      }
      ts.expect_end();
      node.body = parse_body({"endset"}, end, &node);
      ended_tag().expect_end();
      return;
    }
    if (k == "macro") {
      node.kind = NodeKind::kMacro;
      node.text = ts.expect_name();
      ts.expect_op("(");
      parse_params(ts, node);
      ts.expect_end();
      node.body = parse_body({"endmacro"}, end, &node);
      ended_tag().expect_end();
      return;
    }
    if (k == "call") {
      node.kind = NodeKind::kCallBlock;
      if (ts.skip_op("(")) parse_params(ts, node);
      node.expr = ExprParser(ts).expression();
      if (node.expr->kind != ExprKind::kCall) throw Error("expected a macro call", kw.line, kw.column);
      ts.expect_end();
      node.body = parse_body({"endcall"}, end, &node);
      ended_tag().expect_end();
      return;
    }
    if (k == "filter") {
      node.kind = NodeKind::kFilterBlock;
      ExprPtr placeholder = make(ExprKind::kName, ts.peek());
      placeholder->name = " body";
      // "{% filter upper %}" is the chain "| upper" applied to the body.
      node.expr = parse_filter_chain(ts, placeholder, /*leading_pipe=*/false);
      ts.expect_end();
      node.body = parse_body({"endfilter"}, end, &node);
      ended_tag().expect_end();
      return;
    }
    if (k == "break" || k == "continue") {
      node.kind = k == "break" ? NodeKind::kBreak : NodeKind::kContinue;
      ts.expect_end();
      return;
    }
    if (k == "generation") {
      // transformers' {% generation %} marks assistant text; it renders as is.
      node.kind = NodeKind::kScope;
      ts.expect_end();
      node.body = parse_body({"endgeneration"}, end, &node);
      ended_tag().expect_end();
      return;
    }
    throw Error("unsupported statement '" + k + "'", kw.line, kw.column);
  }

  // Parses "name, name=default, ...)" after the "(" of a macro or call block.
  void parse_params(TokenStream& ts, Node& node) {
    while (!ts.skip_op(")")) {
      if (!node.params.empty()) ts.expect_op(",");
      std::string param = ts.expect_name();
      ExprPtr def;
      if (ts.skip_op("=")) def = ExprParser(ts).expression();
      node.params.emplace_back(param, def);
    }
  }

  // Parses "| f1(args) | f2" (or "f1(args) | f2" for {% filter %}) applied to `input`.
  ExprPtr parse_filter_chain(TokenStream& ts, ExprPtr input, bool leading_pipe = true) {
    ExprPtr e = input;
    bool first = true;
    while (true) {
      if (!(first && !leading_pipe) && !ts.skip_op("|")) break;
      first = false;
      const Token& at = ts.peek();
      ExprPtr f = make(ExprKind::kFilter, at);
      f->name = ts.expect_name();
      f->args = {e};
      if (ts.skip_op("(")) ExprParser(ts).call_args(f);
      e = f;
    }
    return e;
  }

  const std::vector<Segment>& segs_;
  size_t pos_ = 0;
  const Segment* current_ = nullptr;
};

}  // namespace

Body parse_template(const std::vector<Segment>& segments) { return Parser(segments).parse(); }

}  // namespace llmctl::tokenizer::jinja
