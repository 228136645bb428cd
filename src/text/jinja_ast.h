// The syntax tree of a chat template: expressions and statements, each with the source
// offset it came from so that errors can name a line and column.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "text/jinja_value.h"

namespace dsinfer::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Arguments {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
};

struct Expr {
  enum class Kind {
    Literal,    // value
    Name,       // name
    List,       // items
    Tuple,      // items
    Dict,       // keys[i] -> items[i]
    Attribute,  // object.name
    Subscript,  // object[index]
    Slice,      // object[start:stop:step]; absent parts are null
    Call,       // object(args)
    Filter,     // object | name(args)
    Test,       // object is [not] name(args)
    Unary,      // op object  (op: not, -, +)
    Binary,     // left op right
    Compare,    // items[0] ops[0] items[1] ops[1] items[2] ...: a Python comparison chain
    Conditional // items[0] if object else items[1]; items[1] may be null
  };
  Kind kind;
  size_t offset = 0;
  Value value;
  std::string name;  // variable, attribute, filter/test name or operator
  ExprPtr object;
  ExprPtr left, right;
  std::vector<ExprPtr> items;
  std::vector<ExprPtr> keys;
  std::vector<std::string> ops;  // for Compare
  ExprPtr start, stop, step;
  Arguments args;
  bool negated = false;  // for Test: `is not`

  Expr(Kind k, size_t off) : kind(k), offset(off) {}
};

struct Stmt;
using StmtList = std::vector<std::unique_ptr<Stmt>>;

// The target of set/for: plain names, or one namespace attribute (`ns.attr`).
struct Target {
  std::vector<std::string> names;
  std::string attribute;  // non-empty: names[0].attribute
};

struct Stmt {
  enum class Kind {
    Text,      // text
    Output,    // {{ expr }}
    If,        // conditions[i] -> bodies[i]; else_body
    For,       // for target in expr [if filter]: body; else_body
    Set,       // set target = expr, or block set (body) when expr is null
    Macro,     // macro name(params with defaults): body
    Break,
    Continue,
    Block      // a body with no effect of its own ({% generation %})
  };
  Kind kind;
  size_t offset = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;
  std::vector<ExprPtr> conditions;
  std::vector<StmtList> bodies;
  StmtList body;
  StmtList else_body;
  Target target;
  std::string name;
  std::vector<std::pair<std::string, ExprPtr>> params;

  Stmt(Kind k, size_t off) : kind(k), offset(off) {}
};

}  // namespace dsinfer::jinja
