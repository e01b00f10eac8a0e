// Tokens and syntax tree of the Jinja subset (see include/contrail/chat/chat_template.h).
// Every node keeps the line:column where it starts, for error messages.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_value.h"

namespace contrail::jinja {

struct Pos {
  int line = 1, col = 1;
};

enum class Tok {
  Text,        // template text between tags, whitespace control already applied
  VarBegin,    // {{
  VarEnd,      // }}
  BlockBegin,  // {%
  BlockEnd,    // %}
  Name,
  String,      // text = the decoded literal
  Int,
  Float,
  Op,          // text = the operator: + - * / // % ** ~ == != < <= > >= = ( ) [ ] { } , . : |
  Eof,
};

struct Token {
  Tok type = Tok::Eof;
  std::string text;
  int64_t ival = 0;
  double fval = 0;
  Pos pos;
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    Literal,   // value
    Name,      // name
    ListLit,   // args = items; name "tuple" for a tuple
    DictLit,   // args = key0, value0, key1, value1, ... (keys must evaluate to strings)
    GetAttr,   // args[0] = object, name = attribute
    GetItem,   // args[0] = object, args[1] = index
    Slice,     // args[0] = object, args[1..3] = start, stop, step (nullptr = omitted)
    Call,      // args[0] = callee, args[1..] = positional, kwargs
    Filter,    // name; args[0] = input, args[1..] = positional, kwargs
    Test,      // name, negated; args[0] = input, args[1..] = positional
    Not,       // args[0]
    Neg,       // args[0]
    Pos,       // args[0]
    Binary,    // name = operator (+ - * / // % ** ~), args[0], args[1]
    Compare,   // ops[i] compares args[i] with args[i+1] (== != < <= > >= in notin)
    And,       // args[0], args[1]
    Or,        // args[0], args[1]
    Cond,      // args[0] if args[1] else args[2] (args[2] nullptr: undefined)
  };
  Kind kind;
  Pos pos;
  Value value;
  std::string name;
  bool negated = false;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
  int height = 1;  // levels of the subtree rooted here (1: no children); the parser bounds it

  Expr(Kind k, Pos p) : kind(k), pos(p) {}
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // nullptr: required
};

struct Stmt {
  enum class Kind {
    Text,      // text
    Output,    // expr
    If,        // branches (cond, body)..., else_body
    For,       // targets in expr [if filter]: body, else_body
    Set,       // targets = expr; or target.attr = expr when attr is non-empty (one target)
    SetBlock,  // targets[0] = rendered body (optionally piped through `filters`)
    Macro,     // name = targets[0], params, body
    Break,
    Continue,
    Block,     // body rendered in place ({% generation %})
    FilterBlock,  // body rendered, then each Filter expr in `filters` applied (args[0] unused)
  };
  Kind kind;
  Pos pos;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body, else_body;
  std::vector<std::string> targets;
  std::string attr;
  std::vector<MacroParam> params;
  std::vector<ExprPtr> filters;

  Stmt(Kind k, Pos p) : kind(k), pos(p) {}
};

struct Program {
  Body body;
};

struct LexOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
};

// Splits template source (newlines already normalised to \n) into tokens ending with Eof.
// Throws FormatError "chat template line L:C: ..." for unterminated tags, strings or comments
// and characters that are no token.
std::vector<Token> lex(const std::string& src, const LexOptions& opts = {});

// Parses the tokens; max_depth bounds the nesting of blocks and the height of every expression
// tree (also the left-deep ones a chain like `a + b + ...` or `x.a.b...` builds without nesting).
// Throws FormatError naming line:column for anything outside the supported subset.
Program parse(const std::vector<Token>& tokens, int max_depth);

// Whether `name` is a filter / test the interpreter implements (checked at parse time).
bool is_known_filter(const std::string& name);
bool is_known_test(const std::string& name);

}  // namespace contrail::jinja
