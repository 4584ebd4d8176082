#include "runtime/tokenizer/jinja_template.h"

#include <cmath>
#include <unordered_map>

#include "runtime/tokenizer/jinja_builtins.h"
#include "runtime/tokenizer/jinja_parser.h"
#include "runtime/tokenizer/jinja_percent_format.h"

namespace llmctl::tokenizer::jinja {
namespace {

using Scope = std::unordered_map<std::string, Value>;

[[noreturn]] void fail(const std::string& message, const Expr& at) { throw Error(message, at.line, at.column); }

// Raises Jinja's UndefinedError for an undefined value that is being used.
void require_defined(const Value& v, const Expr& at) {
  if (v.is_undefined()) fail(v.s.empty() ? "value is undefined" : v.s, at);
}

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// Python slice indices for a sequence of `n` elements.
std::vector<int64_t> slice_indices(int64_t n, const Value* start, const Value* stop, const Value* step, const Expr& at) {
  int64_t st = 1;
  if (step && !step->is_none()) {
    if (step->type != Value::Type::kInt) fail("slice indices must be integers", at);
    st = step->i;
    if (st == 0) fail("slice step cannot be zero", at);
  }
  auto norm = [&](const Value* v, int64_t def, bool is_start) -> int64_t {
    if (!v || v->is_none()) return def;
    if (v->type != Value::Type::kInt) fail("slice indices must be integers or None", at);
    int64_t x = v->i;
    if (x < 0) x += n;
    if (st > 0) return std::clamp<int64_t>(x, 0, n);
    (void)is_start;
    return std::clamp<int64_t>(x, -1, n - 1);
  };
  int64_t b = norm(start, st > 0 ? 0 : n - 1, true);
  int64_t e = norm(stop, st > 0 ? n : -1, false);
  std::vector<int64_t> idx;
  if (st > 0) {
    for (int64_t k = b; k < e; k += st) idx.push_back(k);
  } else {
    for (int64_t k = b; k > e; k += st) idx.push_back(k);
  }
  return idx;
}

class Renderer {
 public:
  Renderer(const RenderContext& ctx) {
    Scope root;
    Dict globals;
    add_globals(globals, ctx.now);
    for (auto& [k, v] : globals.items) root[k] = v;
    for (const auto& [k, v] : ctx.variables.items) root[k] = v;
    scopes_.push_back(std::move(root));
  }

  void render(const Body& body, std::string& out) {
    for (const NodePtr& node : body) {
      render_node(*node, out);
      if (flow_ != Flow::kNone) return;
    }
  }

 private:
  enum class Flow { kNone, kBreak, kContinue };

  Value lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto found = it->find(name);
      if (found != it->end()) return found->second;
    }
    return Value::undefined("'" + name + "' is undefined");
  }

  void assign(const std::string& name, Value v) { scopes_.back()[name] = std::move(v); }

  void render_node(const Node& node, std::string& out) {
    switch (node.kind) {
      case NodeKind::kText: out += node.text; return;
      case NodeKind::kOutput: out += eval(*node.expr).str(); return;
      case NodeKind::kIf:
        for (const auto& [cond, body] : node.branches) {
          if (eval(*cond).truthy()) {
            render(body, out);
            return;
          }
        }
        render(node.else_body, out);
        return;
      case NodeKind::kFor: render_for(node, out); return;
      case NodeKind::kSet: render_set(node, out); return;
      case NodeKind::kMacro: assign(node.text, make_macro(node)); return;
      case NodeKind::kCallBlock: render_call_block(node, out); return;
      case NodeKind::kFilterBlock: {
        std::string body;
        render(node.body, body);
        scopes_.push_back({{" body", Value::string(body)}});
        Value v = eval(*node.expr);
        scopes_.pop_back();
        out += v.str();
        return;
      }
      case NodeKind::kBreak: flow_ = Flow::kBreak; return;
      case NodeKind::kContinue: flow_ = Flow::kContinue; return;
      case NodeKind::kScope: render(node.body, out); return;
    }
  }

  void render_set(const Node& node, std::string& out) {
    (void)out;
    Value v;
    if (node.expr && node.body.empty()) {
      v = eval(*node.expr);
    } else {
      std::string body;
      render(node.body, body);
      v = Value::string(body);
      if (node.expr) {
        scopes_.push_back({{" body", v}});
        v = eval(*node.expr);
        scopes_.pop_back();
      }
    }
    if (!node.attr.empty()) {
      Value target = lookup(node.targets[0]);
      if (target.type != Value::Type::kNamespace) {
        throw Error("cannot assign attribute on non-namespace object", node.line, node.column);
      }
      target.dict->set(node.attr, std::move(v));
      return;
    }
    if (node.targets.size() == 1) {
      assign(node.targets[0], std::move(v));
      return;
    }
    List items = iterate(v, node.line, node.column);
    if (items.size() != node.targets.size()) {
      throw Error("cannot unpack " + std::to_string(items.size()) + " values into " +
                      std::to_string(node.targets.size()) + " names", node.line, node.column);
    }
    for (size_t k = 0; k < items.size(); ++k) assign(node.targets[k], items[k]);
  }

  void bind_targets(const Node& node, const Value& item) {
    if (node.targets.size() == 1) {
      assign(node.targets[0], item);
      return;
    }
    List parts = iterate(item, node.line, node.column);
    if (parts.size() != node.targets.size()) {
      throw Error("cannot unpack " + std::to_string(parts.size()) + " values into " +
                      std::to_string(node.targets.size()) + " loop variables", node.line, node.column);
    }
    for (size_t k = 0; k < parts.size(); ++k) assign(node.targets[k], parts[k]);
  }

  void render_for(const Node& node, std::string& out) {
    Value seq = eval(*node.expr);
    render_loop(node, seq, 1, out);
  }

  // One level of a for loop over `seq`; a recursive loop's `loop(items)`
  // comes back here with depth + 1 and returns what that level rendered.
  void render_loop(const Node& node, const Value& seq, int64_t depth, std::string& out) {
    if (depth > kMaxNesting) fail("recursive loop nested deeper than " + std::to_string(kMaxNesting) + " levels", *node.expr);
    if (seq.is_none() || seq.type == Value::Type::kInt || seq.type == Value::Type::kFloat ||
        seq.type == Value::Type::kBool) {
      fail("'" + seq.type_name() + "' object is not iterable", *node.expr);
    }
    List items = iterate(seq, node.line, node.column);
    scopes_.emplace_back();
    if (node.condition) {
      List kept;
      for (const Value& item : items) {
        bind_targets(node, item);
        if (eval(*node.condition).truthy()) kept.push_back(item);
      }
      items = std::move(kept);
    }
    const auto n = static_cast<int64_t>(items.size());
    const Node* def = &node;
    for (int64_t k = 0; k < n; ++k) {
      // A fresh loop object per iteration: templates may keep a reference to it.
      Value loop = Value::make_dict();
      Dict& d = *loop.dict;
      d.set("index", Value::integer(k + 1));
      d.set("index0", Value::integer(k));
      d.set("revindex", Value::integer(n - k));
      d.set("revindex0", Value::integer(n - k - 1));
      d.set("first", Value::boolean(k == 0));
      d.set("last", Value::boolean(k == n - 1));
      d.set("length", Value::integer(n));
      d.set("depth", Value::integer(depth));
      d.set("depth0", Value::integer(depth - 1));
      d.set("previtem", k > 0 ? items[k - 1] : Value::undefined("there is no previous item"));
      d.set("nextitem", k + 1 < n ? items[k + 1] : Value::undefined("there is no next item"));
      d.set("cycle", Value::function([k](CallArgs& a) -> Value {
        if (a.positional.empty()) throw Error("no items for cycling given", a.line, a.column);
        return a.positional[static_cast<size_t>(k) % a.positional.size()];
      }));
      // `loop` itself is callable (Value::fn on a dict): the recursion.
      loop.fn = std::make_shared<Function>([this, def, depth](CallArgs& a) -> Value {
        if (!def->recursive) {
          throw Error("The loop must have the 'recursive' marker to be called recursively.", a.line, a.column);
        }
        if (a.positional.size() != 1 || !a.keyword.empty()) {
          throw Error("loop() takes exactly one argument, the items of the next level", a.line, a.column);
        }
        std::string nested;
        const Flow saved_flow = flow_;
        flow_ = Flow::kNone;
        render_loop(*def, a.positional[0], depth + 1, nested);
        flow_ = saved_flow;
        return Value::string(nested);
      });
      assign("loop", loop);
      bind_targets(node, items[k]);
      render(node.body, out);
      if (flow_ == Flow::kBreak) {
        flow_ = Flow::kNone;
        break;
      }
      flow_ = Flow::kNone;
    }
    scopes_.pop_back();
    if (n == 0) render(node.else_body, out);
  }

  // Binds a macro's or caller's parameters in the current (innermost) scope.
  void bind_params(const std::vector<std::pair<std::string, ExprPtr>>& params, CallArgs& args,
                   const std::string& what) {
    if (args.positional.size() > params.size()) {
      throw Error(what + " takes not more than " + std::to_string(params.size()) + " argument(s)", args.line,
                  args.column);
    }
    for (size_t k = 0; k < params.size(); ++k) {
      const auto& [name, default_expr] = params[k];
      const Value* v = args.get(name, k);
      if (v) {
        assign(name, *v);
      } else if (default_expr) {
        assign(name, eval(*default_expr));
      } else {
        assign(name, Value::undefined("'" + name + "' is undefined"));
      }
    }
  }

  Value make_macro(const Node& node) {
    const Node* def = &node;
    return Value::function([this, def](CallArgs& args) -> Value { return call_macro(*def, args); });
  }

  Value call_macro(const Node& def, CallArgs& args) {
    // Messages are user input: a template recursing over them must not be
    // able to exhaust the native stack.
    if (macro_depth_ >= kMaxNesting) {
      throw Error("macro calls nested deeper than " + std::to_string(kMaxNesting) + " levels", args.line, args.column);
    }
    struct DepthGuard {
      int& d;
      explicit DepthGuard(int& x) : d(x) { ++d; }
      ~DepthGuard() { --d; }
    } guard(macro_depth_);
    if (args.positional.size() > def.params.size()) {
      throw Error("macro '" + def.text + "' takes not more than " + std::to_string(def.params.size()) +
                      " argument(s)", args.line, args.column);
    }
    std::vector<Scope> saved;
    saved.swap(scopes_);
    scopes_.push_back(saved.front());  // macros see the template's top-level names
    scopes_.emplace_back();
    try {
      bind_params(def.params, args, "macro '" + def.text + "'");
    } catch (...) {
      scopes_.swap(saved);
      throw;
    }
    for (const auto& [k, v] : args.keyword) {
      if (k == "caller") assign("caller", v);
    }
    std::string out;
    Flow saved_flow = flow_;
    flow_ = Flow::kNone;
    try {
      render(def.body, out);
    } catch (...) {
      saved.front() = scopes_.front();
      scopes_.swap(saved);
      throw;
    }
    flow_ = saved_flow;
    saved.front() = scopes_.front();
    scopes_.swap(saved);
    return Value::string(out);
  }

  void render_call_block(const Node& node, std::string& out) {
    const Expr& call = *node.expr;
    Value callee = eval(*call.args[0]);
    require_defined(callee, *call.args[0]);
    if (callee.type != Value::Type::kFunction) fail("'" + callee.type_name() + "' object is not callable", call);
    CallArgs args = eval_args(call);
    // caller() is a closure: its body sees the names visible here, not the
    // macro's, and its own sets stay local to each call.
    auto captured = std::make_shared<const std::vector<Scope>>(scopes_);
    const Node* def = &node;
    args.keyword.emplace_back("caller", Value::function([this, def, captured](CallArgs& a) -> Value {
      std::vector<Scope> saved = *captured;
      saved.swap(scopes_);
      scopes_.emplace_back();
      std::string s;
      const Flow saved_flow = flow_;
      flow_ = Flow::kNone;
      try {
        bind_params(def->params, a, "caller");
        render(def->body, s);
      } catch (...) {
        scopes_.swap(saved);
        flow_ = saved_flow;
        throw;
      }
      // Writes through to the template's top level (e.g. a top-level set)
      // are not Jinja's behaviour either; only shared objects carry state out.
      scopes_.swap(saved);
      flow_ = saved_flow;
      return Value::string(s);
    }));
    out += (*callee.fn)(args).str();
  }

  CallArgs eval_args(const Expr& e) {
    CallArgs args;
    args.line = e.line;
    args.column = e.column;
    for (size_t k = 1; k < e.args.size(); ++k) args.positional.push_back(eval(*e.args[k]));
    for (const auto& [name, expr] : e.kwargs) args.keyword.emplace_back(name, eval(*expr));
    return args;
  }

  Value get_attr(const Value& obj, const std::string& name, const Expr& at) {
    require_defined(obj, at);
    if (obj.is_mapping()) {
      if (const Value* v = obj.dict->find(name)) return *v;
    }
    Value method = get_method(obj, name, at.line, at.column);
    if (!method.is_undefined()) return method;
    std::string what = obj.is_none() ? "None" : "'" + obj.type_name() + " object'";
    if (obj.type == Value::Type::kDict) what = "'dict object'";
    return Value::undefined(what + " has no attribute '" + name + "'");
  }

  Value get_item(const Value& obj, const Value& key, const Expr& at) {
    require_defined(obj, at);
    if (obj.is_mapping() && key.is_string()) {
      if (const Value* v = obj.dict->find(key.s)) return *v;
      // Jinja's subscript falls back to attributes (message['items'] is the method).
      Value method = get_method(obj, key.s, at.line, at.column);
      if (!method.is_undefined()) return method;
      return Value::undefined("'dict object' has no attribute '" + key.s + "'");
    }
    if ((obj.is_list() || obj.is_string()) && (key.type == Value::Type::kInt || key.type == Value::Type::kBool)) {
      int64_t k = key.type == Value::Type::kBool ? key.b : key.i;
      if (obj.is_list()) {
        auto n = static_cast<int64_t>(obj.list->size());
        if (k < 0) k += n;
        if (k < 0 || k >= n) return Value::undefined(obj.type_name() + " object has no element " + std::to_string(key.i));
        return (*obj.list)[static_cast<size_t>(k)];
      }
      std::vector<uint32_t> cps = utf8_decode(obj.s);
      auto n = static_cast<int64_t>(cps.size());
      if (k < 0) k += n;
      if (k < 0 || k >= n) return Value::undefined("str object has no element " + std::to_string(key.i));
      std::string ch;
      utf8_append(ch, cps[static_cast<size_t>(k)]);
      return Value::string(ch);
    }
    if (key.is_string()) return get_attr(obj, key.s, at);
    return Value::undefined("'" + obj.type_name() + " object' has no element " + key.repr());
  }

  Value slice(const Expr& e) {
    Value obj = eval(*e.args[0]);
    require_defined(obj, e);
    Value parts[3];
    const Value* ptr[3] = {nullptr, nullptr, nullptr};
    for (int k = 0; k < 3; ++k) {
      if (e.args[static_cast<size_t>(k) + 1]) {
        parts[k] = eval(*e.args[static_cast<size_t>(k) + 1]);
        ptr[k] = &parts[k];
      }
    }
    if (obj.is_list()) {
      auto idx = slice_indices(static_cast<int64_t>(obj.list->size()), ptr[0], ptr[1], ptr[2], e);
      List out;
      for (int64_t k : idx) out.push_back((*obj.list)[static_cast<size_t>(k)]);
      return Value::make_list(std::move(out), obj.is_tuple);
    }
    if (obj.is_string()) {
      std::vector<uint32_t> cps = utf8_decode(obj.s);
      auto idx = slice_indices(static_cast<int64_t>(cps.size()), ptr[0], ptr[1], ptr[2], e);
      std::string out;
      for (int64_t k : idx) utf8_append(out, cps[static_cast<size_t>(k)]);
      return Value::string(out);
    }
    fail("'" + obj.type_name() + "' object is not subscriptable", e);
  }

  Value arithmetic(const std::string& op, const Value& a, const Value& b, const Expr& at) {
    // str % args is Python's printf-style formatting (an undefined argument
    // prints as "", as Jinja's Undefined does).
    if (op == "%" && a.is_string()) return Value::string(percent_format(a.s, b, at.line, at.column));
    require_defined(a, at);
    require_defined(b, at);
    auto type_error = [&]() -> Value {
      fail("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'", at);
    };
    if (op == "+") {
      if (a.is_string() && b.is_string()) return Value::string(a.s + b.s);
      if (a.is_list() && b.is_list()) {
        List out = *a.list;
        out.insert(out.end(), b.list->begin(), b.list->end());
        return Value::make_list(std::move(out), a.is_tuple);
      }
    }
    if (op == "*") {
      const Value* seq = a.is_string() || a.is_list() ? &a : b.is_string() || b.is_list() ? &b : nullptr;
      const Value* count = seq == &a ? &b : &a;
      if (seq && count->type == Value::Type::kInt) {
        if (seq->is_string()) {
          std::string out;
          for (int64_t k = 0; k < count->i; ++k) out += seq->s;
          return Value::string(out);
        }
        List out;
        for (int64_t k = 0; k < count->i; ++k) out.insert(out.end(), seq->list->begin(), seq->list->end());
        return Value::make_list(std::move(out));
      }
    }
    if (!a.is_number() || !b.is_number()) return type_error();
    bool ints = a.type != Value::Type::kFloat && b.type != Value::Type::kFloat;
    auto iv = [](const Value& v) { return v.type == Value::Type::kBool ? static_cast<int64_t>(v.b) : v.i; };
    double x = a.as_double(), y = b.as_double();
    if (op == "+") return ints ? Value::integer(iv(a) + iv(b)) : Value::number(x + y);
    if (op == "-") return ints ? Value::integer(iv(a) - iv(b)) : Value::number(x - y);
    if (op == "*") return ints ? Value::integer(iv(a) * iv(b)) : Value::number(x * y);
    if (op == "/") {
      if (y == 0) fail("division by zero", at);
      return Value::number(x / y);
    }
    if (op == "//") {
      if (y == 0) fail("integer division or modulo by zero", at);
      return ints ? Value::integer(floor_div(iv(a), iv(b))) : Value::number(std::floor(x / y));
    }
    if (op == "%") {
      if (y == 0) fail("integer division or modulo by zero", at);
      if (ints) return Value::integer(iv(a) - floor_div(iv(a), iv(b)) * iv(b));
      return Value::number(x - std::floor(x / y) * y);
    }
    if (op == "**") {
      if (ints && iv(b) >= 0) {
        int64_t r = 1;
        for (int64_t k = 0; k < iv(b); ++k) r *= iv(a);
        return Value::integer(r);
      }
      return Value::number(std::pow(x, y));
    }
    return type_error();
  }

  Value binary(const Expr& e) {
    const std::string& op = e.name;
    if (op == "and") {
      Value a = eval(*e.args[0]);
      return a.truthy() ? eval(*e.args[1]) : a;
    }
    if (op == "or") {
      Value a = eval(*e.args[0]);
      return a.truthy() ? a : eval(*e.args[1]);
    }
    Value a = eval(*e.args[0]);
    Value b = eval(*e.args[1]);
    if (op == "~") return Value::string(a.str() + b.str());
    if (op == "==") return Value::boolean(a.equals(b));
    if (op == "!=") return Value::boolean(!a.equals(b));
    if (op == "in") return Value::boolean(contains(b, a, e.line, e.column));
    if (op == "not in") return Value::boolean(!contains(b, a, e.line, e.column));
    if (op == "<") return Value::boolean(less_than(a, b, e.line, e.column));
    if (op == ">") return Value::boolean(less_than(b, a, e.line, e.column));
    if (op == "<=") return Value::boolean(!less_than(b, a, e.line, e.column));
    if (op == ">=") return Value::boolean(!less_than(a, b, e.line, e.column));
    return arithmetic(op, a, b, e);
  }

  Value eval(const Expr& e) {
    switch (e.kind) {
      case ExprKind::kLiteral: return e.literal;
      case ExprKind::kName: return lookup(e.name);
      case ExprKind::kList:
      case ExprKind::kTuple: {
        List items;
        for (const auto& a : e.args) items.push_back(eval(*a));
        return Value::make_list(std::move(items), e.kind == ExprKind::kTuple);
      }
      case ExprKind::kDict: {
        Dict d;
        for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
          Value key = eval(*e.args[k]);
          d.set(key.str(), eval(*e.args[k + 1]));
        }
        return Value::make_dict(std::move(d));
      }
      case ExprKind::kAttr: return get_attr(eval(*e.args[0]), e.name, e);
      case ExprKind::kItem: {
        Value obj = eval(*e.args[0]);
        return get_item(obj, eval(*e.args[1]), e);
      }
      case ExprKind::kSlice: return slice(e);
      case ExprKind::kCall: {
        Value callee = eval(*e.args[0]);
        require_defined(callee, *e.args[0]);
        // A loop object is a dict that is also callable (recursive loops).
        if (callee.type != Value::Type::kFunction && !(callee.type == Value::Type::kDict && callee.fn)) {
          fail("'" + callee.type_name() + "' object is not callable", e);
        }
        CallArgs args = eval_args(e);
        return (*callee.fn)(args);
      }
      case ExprKind::kFilter: {
        Value input = eval(*e.args[0]);
        CallArgs args = eval_args(e);
        return apply_filter(e.name, input, args);
      }
      case ExprKind::kTest: {
        Value input = eval(*e.args[0]);
        CallArgs args = eval_args(e);
        bool r = apply_test(e.name, input, args);
        return Value::boolean(e.negated ? !r : r);
      }
      case ExprKind::kUnary: {
        Value v = eval(*e.args[0]);
        if (e.name == "not") return Value::boolean(!v.truthy());
        require_defined(v, e);
        if (v.type == Value::Type::kInt) return Value::integer(e.name == "-" ? -v.i : v.i);
        if (v.type == Value::Type::kFloat) return Value::number(e.name == "-" ? -v.f : v.f);
        if (v.type == Value::Type::kBool) return Value::integer(e.name == "-" ? -int64_t{v.b} : int64_t{v.b});
        fail("bad operand type for unary " + e.name + ": '" + v.type_name() + "'", e);
      }
      case ExprKind::kBinary: return binary(e);
      case ExprKind::kConditional:
        if (eval(*e.args[1]).truthy()) return eval(*e.args[0]);
        return e.args[2] ? eval(*e.args[2]) : Value::undefined("the inline if-expression evaluated to false and no else section was defined");
    }
    fail("unsupported expression", e);
  }

  static constexpr int kMaxNesting = 200;

  std::vector<Scope> scopes_;
  Flow flow_ = Flow::kNone;
  int macro_depth_ = 0;
};

std::string position(const std::string& origin, const Error& e) {
  return origin + ":" + std::to_string(e.line) + ":" + std::to_string(e.column);
}

}  // namespace

Result<std::shared_ptr<const Template>> Template::parse(const std::string& source, std::string origin,
                                                        const LexOptions& options) {
  auto t = std::make_shared<Template>();
  t->origin_ = std::move(origin);
  try {
    t->body_ = parse_template(lex_template(source, options));
  } catch (const Error& e) {
    return Status::invalid_argument(position(t->origin_, e) + ": " + e.what());
  }
  return std::shared_ptr<const Template>(std::move(t));
}

Result<std::string> Template::render(const RenderContext& context) const {
  std::string out;
  try {
    Renderer r(context);
    r.render(body_, out);
  } catch (const Error& e) {
    if (e.raised_by_template) {
      return Status::invalid_argument(std::string(e.what()) + " (raised by " + position(origin_, e) + ")");
    }
    return Status::invalid_argument(position(origin_, e) + ": " + e.what());
  }
  return out;
}

}  // namespace llmctl::tokenizer::jinja
