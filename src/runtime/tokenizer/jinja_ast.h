// The syntax tree of llmctl's Jinja subset: expressions and statements, each
// carrying the template line and column it came from (for error messages).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/tokenizer/jinja_value.h"

namespace llmctl::tokenizer::jinja {

struct Expr;
using ExprPtr = std::shared_ptr<Expr>;

enum class ExprKind {
  kLiteral,      // literal
  kName,         // name
  kList,         // args: items
  kTuple,        // args: items
  kDict,         // args: key0, value0, key1, value1, ...
  kAttr,         // args[0].name
  kItem,         // args[0][args[1]]
  kSlice,        // args[0][args[1]:args[2]:args[3]], missing parts are null
  kCall,         // args[0](args[1..], kwargs)
  kFilter,       // args[0] | name(args[1..], kwargs)
  kTest,         // args[0] is [not] name(args[1..])
  kUnary,        // name in {"not", "-", "+"}, args[0]
  kBinary,       // args[0] name args[1]; name is an operator, "and", "or", "in", "not in"
  kConditional,  // args[0] if args[1] else args[2] (args[2] may be null)
};

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  int line = 0;
  int column = 0;
  Value literal;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  bool negated = false;  // kTest: "is not"
};

struct Node;
using NodePtr = std::shared_ptr<Node>;
using Body = std::vector<NodePtr>;

enum class NodeKind {
  kText,      // text
  kOutput,    // {{ expr }}
  kIf,        // branches (condition, body); else_body
  kFor,       // targets in expr [if condition] [recursive]: body; else_body
  kSet,       // targets = expr; or attr target (targets[0].attr); or block set: body
  kMacro,     // name(params with defaults): body
  kCallBlock, // {% call(params) macro(...) %}body{% endcall %}: expr is the call, body is `caller`
  kFilterBlock,  // {% filter name %}body{% endfilter %}: expr is the filter applied to a placeholder
  kBreak,
  kContinue,
  kScope,     // a body rendered as is ({% generation %} and similar)
};

struct Node {
  NodeKind kind = NodeKind::kText;
  int line = 0;
  int column = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr condition;
  std::vector<std::string> targets;
  std::string attr;  // kSet: "ns.attr = ..." sets attribute `attr` of targets[0]
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  std::vector<std::pair<std::string, ExprPtr>> params;  // kMacro, kCallBlock; default may be null
  bool recursive = false;  // kFor: `loop(items)` renders the body again one level deeper
};

}  // namespace llmctl::tokenizer::jinja
