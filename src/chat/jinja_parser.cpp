// Recursive-descent parser for the Jinja subset, following jinja2.parser's grammar and operator
// precedence (lowest first): `a if c else b`, or, and, not, comparisons (chained, in, not in),
// + -, ~, * / // %, **, unary - +, then primaries with postfix . [] () and filters | / tests is.
#include <fmt/format.h>

#include <algorithm>

#include "chat/jinja_ast.h"
#include "contrail/core/error.h"

namespace contrail::jinja {
namespace {

class Parser {
 public:
  Parser(const std::vector<Token>& toks, int max_depth) : t_(toks), max_depth_(max_depth) {}

  Program run() {
    Program p;
    std::string end;
    p.body = parse_body({}, end);
    return p;
  }

 private:
  // ---- token helpers --------------------------------------------------------------------------
  const Token& cur() const { return t_[i_]; }
  const Token& peek(size_t k = 1) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  const Token& next() {
    const Token& t = t_[i_];
    if (i_ + 1 < t_.size()) ++i_;
    return t;
  }
  bool is_op(const char* op) const { return cur().type == Tok::Op && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == Tok::Name && cur().text == n; }
  bool accept_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool accept_name(const char* n) {
    if (!is_name(n)) return false;
    next();
    return true;
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::Text: return "template text";
      case Tok::VarBegin: return "'{{'";
      case Tok::VarEnd: return "'}}'";
      case Tok::BlockBegin: return "'{%'";
      case Tok::BlockEnd: return "'%}'";
      case Tok::Name:
      case Tok::Op: return "'" + t.text + "'";
      case Tok::String: return "string literal";
      case Tok::Int:
      case Tok::Float: return "number " + t.text;
      case Tok::Eof: return "end of template";
    }
    return "?";
  }

  [[noreturn]] void fail(const Pos& p, const std::string& what) const {
    throw FormatError(fmt::format("chat template line {}:{}: {}", p.line, p.col, what));
  }
  [[noreturn]] void fail_expected(const std::string& what) const {
    fail(cur().pos, fmt::format("expected {}, got {}", what, describe(cur())));
  }
  void expect_op(const char* op) {
    if (!accept_op(op)) fail_expected(fmt::format("'{}'", op));
  }
  void expect(Tok type, const char* what) {
    if (cur().type != type) fail_expected(what);
    next();
  }
  std::string expect_name() {
    if (cur().type != Tok::Name) fail_expected("a name");
    return next().text;
  }

  // Bounds recursion (blocks and expressions) against hostile nesting.
  struct DepthGuard {
    Parser& p;
    DepthGuard(Parser& parser, const Pos& pos) : p(parser) {
      if (++p.depth_ > p.max_depth_)
        p.fail(pos, fmt::format("nesting deeper than the limit of {} levels", p.max_depth_));
    }
    ~DepthGuard() { --p.depth_; }
  };

  // ---- statements -----------------------------------------------------------------------------
  // Parses until a block tag named in `ends` (consumed up to its name; `end` receives it) or,
  // when `ends` is empty, the end of the template.
  Body parse_body(const std::vector<std::string>& ends, std::string& end) {
    DepthGuard g(*this, cur().pos);
    Body body;
    for (;;) {
      const Token& t = cur();
      if (t.type == Tok::Eof) {
        if (ends.empty()) return body;
        fail(t.pos, fmt::format("unexpected end of template, expected '{}'", ends.back()));
      }
      if (t.type == Tok::Text) {
        auto s = std::make_unique<Stmt>(Stmt::Kind::Text, t.pos);
        s->text = next().text;
        body.push_back(std::move(s));
      } else if (t.type == Tok::VarBegin) {
        auto s = std::make_unique<Stmt>(Stmt::Kind::Output, t.pos);
        next();
        s->expr = parse_tuple(true);
        expect(Tok::VarEnd, "'}}'");
        body.push_back(std::move(s));
      } else if (t.type == Tok::BlockBegin) {
        const Token& name = peek();
        if (name.type == Tok::Name && std::find(ends.begin(), ends.end(), name.text) != ends.end()) {
          next();
          end = next().text;
          return body;
        }
        next();
        body.push_back(parse_statement());
      } else {
        fail_expected("template text or a tag");
      }
    }
  }

  StmtPtr parse_statement() {
    const Pos pos = cur().pos;
    if (cur().type != Tok::Name) fail_expected("a tag name");
    const std::string tag = next().text;
    if (tag == "if") return parse_if(pos);
    if (tag == "for") return parse_for(pos);
    if (tag == "set") return parse_set(pos);
    if (tag == "macro") return parse_macro(pos);
    if (tag == "filter") return parse_filter_block(pos);
    if (tag == "generation") {
      auto s = std::make_unique<Stmt>(Stmt::Kind::Block, pos);
      expect(Tok::BlockEnd, "'%}'");
      s->body = parse_block_body({"endgeneration"});
      return s;
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail(pos, fmt::format("'{}' outside of a loop", tag));
      expect(Tok::BlockEnd, "'%}'");
      return std::make_unique<Stmt>(tag == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue, pos);
    }
    static const char* const kUnsupported[] = {"include", "import", "from", "extends", "block", "call", "raw",
                                               "with", "autoescape", "do"};
    for (const char* u : kUnsupported)
      if (tag == u) fail(pos, fmt::format("the '{}' tag is not supported in chat templates", tag));
    if (tag.rfind("end", 0) == 0 || tag == "else" || tag == "elif")
      fail(pos, fmt::format("unexpected '{}' (no open block it could close or continue)", tag));
    fail(pos, fmt::format("unknown tag '{}'", tag));
  }

  Body parse_block_body(const std::vector<std::string>& ends) {
    std::string end;
    Body b = parse_body(ends, end);
    expect(Tok::BlockEnd, "'%}'");
    return b;
  }

  StmtPtr parse_if(const Pos& pos) {
    auto s = std::make_unique<Stmt>(Stmt::Kind::If, pos);
    for (;;) {
      ExprPtr cond = parse_tuple(false);
      expect(Tok::BlockEnd, "'%}'");
      std::string end;
      Body body = parse_body({"elif", "else", "endif"}, end);
      s->branches.emplace_back(std::move(cond), std::move(body));
      if (end == "elif") continue;
      if (end == "else") {
        expect(Tok::BlockEnd, "'%}'");
        s->else_body = parse_block_body({"endif"});
      } else {
        expect(Tok::BlockEnd, "'%}'");
      }
      return s;
    }
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> names{expect_name()};
    while (accept_op(",")) {
      if (cur().type != Tok::Name) break;
      names.push_back(expect_name());
    }
    return names;
  }

  StmtPtr parse_for(const Pos& pos) {
    auto s = std::make_unique<Stmt>(Stmt::Kind::For, pos);
    const bool paren = accept_op("(");
    s->targets = parse_targets();
    if (paren) expect_op(")");
    if (!accept_name("in")) fail_expected("'in'");
    s->expr = parse_tuple(false, /*with_condexpr=*/false);
    if (accept_name("if")) s->filter = parse_expression();
    if (is_name("recursive")) fail(cur().pos, "recursive for loops are not supported");
    expect(Tok::BlockEnd, "'%}'");
    ++loop_depth_;
    std::string end;
    s->body = parse_body({"else", "endfor"}, end);
    --loop_depth_;
    expect(Tok::BlockEnd, "'%}'");
    if (end == "else") s->else_body = parse_block_body({"endfor"});
    return s;
  }

  StmtPtr parse_set(const Pos& pos) {
    const std::string first = expect_name();
    if (accept_op(".")) {
      auto s = std::make_unique<Stmt>(Stmt::Kind::Set, pos);
      s->targets = {first};
      s->attr = expect_name();
      expect_op("=");
      s->expr = parse_tuple(false);
      expect(Tok::BlockEnd, "'%}'");
      return s;
    }
    std::vector<std::string> targets{first};
    while (accept_op(",")) targets.push_back(expect_name());
    if (accept_op("=")) {
      auto s = std::make_unique<Stmt>(Stmt::Kind::Set, pos);
      s->targets = std::move(targets);
      s->expr = parse_tuple(false);
      expect(Tok::BlockEnd, "'%}'");
      return s;
    }
    if (targets.size() != 1) fail_expected("'='");
    auto s = std::make_unique<Stmt>(Stmt::Kind::SetBlock, pos);
    s->targets = std::move(targets);
    while (accept_op("|")) s->filters.push_back(parse_filter(nullptr));
    expect(Tok::BlockEnd, "'%}'");
    s->body = parse_block_body({"endset"});
    return s;
  }

  StmtPtr parse_macro(const Pos& pos) {
    auto s = std::make_unique<Stmt>(Stmt::Kind::Macro, pos);
    s->targets = {expect_name()};
    expect_op("(");
    while (!is_op(")")) {
      if (!s->params.empty()) expect_op(",");
      if (is_op(")")) break;
      MacroParam p;
      p.name = expect_name();
      if (accept_op("=")) p.default_value = parse_expression();
      s->params.push_back(std::move(p));
    }
    expect_op(")");
    expect(Tok::BlockEnd, "'%}'");
    const int saved = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_block_body({"endmacro"});
    loop_depth_ = saved;
    return s;
  }

  StmtPtr parse_filter_block(const Pos& pos) {
    auto s = std::make_unique<Stmt>(Stmt::Kind::FilterBlock, pos);
    do s->filters.push_back(parse_filter(nullptr));
    while (accept_op("|"));
    expect(Tok::BlockEnd, "'%}'");
    s->body = parse_block_body({"endfilter"});
    return s;
  }

  // ---- expressions ----------------------------------------------------------------------------
  ExprPtr node(Expr::Kind k, const Pos& p) { return std::make_unique<Expr>(k, p); }
  // Sets the height of a node whose children are all attached, failing beyond max_depth. Chains
  // (`a + b + ...`, `x.a.b...`, `x|f|g...`, `f()()...`) grow their tree in a loop, not by
  // recursion, so DepthGuard alone would let a long one build a tree whose evaluation or
  // destruction overflows the stack. Every composite node passes through here.
  ExprPtr finish(ExprPtr e) {
    int below = 0;
    for (const ExprPtr& a : e->args)
      if (a) below = std::max(below, a->height);
    for (const auto& kw : e->kwargs)
      if (kw.second) below = std::max(below, kw.second->height);
    e->height = below + 1;
    if (e->height > max_depth_) fail(e->pos, fmt::format("nesting deeper than the limit of {} levels", max_depth_));
    return e;
  }
  ExprPtr binary(Expr::Kind k, const Pos& p, ExprPtr a, ExprPtr b, std::string op = {}) {
    auto e = node(k, p);
    e->name = std::move(op);
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return finish(std::move(e));
  }

  // An expression, or a tuple of them when commas follow (`a, b`).
  ExprPtr parse_tuple(bool allow_empty, bool with_condexpr = true) {
    const Pos pos = cur().pos;
    ExprPtr first = with_condexpr ? parse_expression() : parse_or();
    if (!is_op(",")) return first;
    auto t = node(Expr::Kind::ListLit, pos);
    t->name = "tuple";
    t->args.push_back(std::move(first));
    while (accept_op(",")) {
      if (cur().type == Tok::VarEnd || cur().type == Tok::BlockEnd || is_op(")")) break;  // trailing comma
      t->args.push_back(with_condexpr ? parse_expression() : parse_or());
    }
    return finish(std::move(t));
  }

  ExprPtr parse_expression() {
    DepthGuard g(*this, cur().pos);
    ExprPtr e = parse_or();
    while (is_name("if")) {
      const Pos pos = next().pos;
      auto c = node(Expr::Kind::Cond, pos);
      ExprPtr cond = parse_or();
      ExprPtr other = accept_name("else") ? parse_expression() : nullptr;
      c->args.push_back(std::move(e));
      c->args.push_back(std::move(cond));
      c->args.push_back(std::move(other));
      e = finish(std::move(c));
    }
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (is_name("or")) {
      const Pos p = next().pos;
      e = binary(Expr::Kind::Or, p, std::move(e), parse_and());
    }
    return e;
  }

  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) {
      const Pos p = next().pos;
      e = binary(Expr::Kind::And, p, std::move(e), parse_not());
    }
    return e;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard g(*this, cur().pos);
      auto e = node(Expr::Kind::Not, next().pos);
      e->args.push_back(parse_not());
      return finish(std::move(e));
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const Pos pos = cur().pos;
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    for (;;) {
      std::string op;
      if (cur().type == Tok::Op && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                    cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
        op = next().text;
      } else if (is_name("in")) {
        next();
        op = "in";
      } else if (is_name("not") && peek().type == Tok::Name && peek().text == "in") {
        next();
        next();
        op = "notin";
      } else {
        break;
      }
      if (!cmp) {
        cmp = node(Expr::Kind::Compare, pos);
        cmp->args.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->args.push_back(parse_math1());
    }
    return cmp ? finish(std::move(cmp)) : std::move(first);
  }

  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& op = next();
      e = binary(Expr::Kind::Binary, op.pos, std::move(e), parse_concat(), op.text);
    }
    return e;
  }

  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (is_op("~")) {
      const Token& op = next();
      e = binary(Expr::Kind::Binary, op.pos, std::move(e), parse_math2(), "~");
    }
    return e;
  }

  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& op = next();
      e = binary(Expr::Kind::Binary, op.pos, std::move(e), parse_pow(), op.text);
    }
    return e;
  }

  ExprPtr parse_pow() {
    ExprPtr e = parse_unary(true);
    while (is_op("**")) {
      const Token& op = next();
      e = binary(Expr::Kind::Binary, op.pos, std::move(e), parse_unary(true), "**");
    }
    return e;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard g(*this, cur().pos);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      const Token& op = next();
      e = node(op.text == "-" ? Expr::Kind::Neg : Expr::Kind::Pos, op.pos);
      e->args.push_back(parse_unary(false));
      e = finish(std::move(e));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    switch (t.type) {
      case Tok::Name: {
        next();
        auto e = node(Expr::Kind::Literal, t.pos);
        if (t.text == "true" || t.text == "True") e->value = Value(true);
        else if (t.text == "false" || t.text == "False") e->value = Value(false);
        else if (t.text == "none" || t.text == "None") e->value = Value::none();
        else {
          e->kind = Expr::Kind::Name;
          e->name = t.text;
        }
        return e;
      }
      case Tok::String: {
        auto e = node(Expr::Kind::Literal, t.pos);
        std::string s;
        while (cur().type == Tok::String) s += next().text;  // adjacent literals concatenate
        e->value = Value(std::move(s));
        return e;
      }
      case Tok::Int:
      case Tok::Float: {
        next();
        auto e = node(Expr::Kind::Literal, t.pos);
        e->value = t.type == Tok::Int ? Value(t.ival) : Value(t.fval);
        return e;
      }
      case Tok::Op:
        if (t.text == "(") {
          next();
          if (accept_op(")")) {  // empty tuple
            auto e = node(Expr::Kind::ListLit, t.pos);
            e->name = "tuple";
            return e;
          }
          ExprPtr e = parse_tuple(false);
          expect_op(")");
          return e;
        }
        if (t.text == "[") {
          next();
          auto e = node(Expr::Kind::ListLit, t.pos);
          while (!is_op("]")) {
            if (!e->args.empty()) expect_op(",");
            if (is_op("]")) break;
            e->args.push_back(parse_expression());
          }
          expect_op("]");
          return finish(std::move(e));
        }
        if (t.text == "{") {
          next();
          auto e = node(Expr::Kind::DictLit, t.pos);
          while (!is_op("}")) {
            if (!e->args.empty()) expect_op(",");
            if (is_op("}")) break;
            e->args.push_back(parse_expression());
            expect_op(":");
            e->args.push_back(parse_expression());
          }
          expect_op("}");
          return finish(std::move(e));
        }
        break;
      default: break;
    }
    fail_expected("an expression");
  }

  ExprPtr parse_postfix(ExprPtr e) {
    for (;;) {
      if (is_op(".")) {
        const Pos p = next().pos;
        if (cur().type == Tok::Int) {
          auto g = node(Expr::Kind::GetItem, p);
          auto idx = node(Expr::Kind::Literal, cur().pos);
          idx->value = Value(next().ival);
          g->args.push_back(std::move(e));
          g->args.push_back(std::move(idx));
          e = finish(std::move(g));
        } else {
          auto g = node(Expr::Kind::GetAttr, p);
          g->name = expect_name();
          g->args.push_back(std::move(e));
          e = finish(std::move(g));
        }
      } else if (is_op("[")) {
        e = parse_subscript(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr obj) {
    const Pos p = next().pos;  // '['
    ExprPtr parts[3];
    int n_colons = 0;
    for (;;) {
      if (is_op("]")) break;
      if (is_op(":")) {
        if (++n_colons > 2) fail_expected("']'");
        next();
        continue;
      }
      if (parts[n_colons]) fail_expected(n_colons < 2 ? "':' or ']'" : "']'");
      parts[n_colons] = parse_expression();
    }
    expect_op("]");
    if (n_colons == 0) {
      if (!parts[0]) fail(p, "empty subscript");
      auto g = node(Expr::Kind::GetItem, p);
      g->args.push_back(std::move(obj));
      g->args.push_back(std::move(parts[0]));
      return finish(std::move(g));
    }
    auto s = node(Expr::Kind::Slice, p);
    s->args.push_back(std::move(obj));
    for (auto& part : parts) s->args.push_back(std::move(part));
    return finish(std::move(s));
  }

  // Parses "(args)" into e->args (after any already there) and e->kwargs.
  void parse_args(Expr& e) {
    expect_op("(");
    bool any = false;
    while (!is_op(")")) {
      if (any) expect_op(",");
      if (is_op(")")) break;
      any = true;
      if (is_op("*") || is_op("**")) fail(cur().pos, "*args and **kwargs in calls are not supported");
      if (cur().type == Tok::Name && peek().type == Tok::Op && peek().text == "=") {
        std::string key = next().text;
        next();
        e.kwargs.emplace_back(std::move(key), parse_expression());
      } else {
        if (!e.kwargs.empty()) fail(cur().pos, "positional argument after keyword argument");
        e.args.push_back(parse_expression());
      }
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto c = node(Expr::Kind::Call, cur().pos);
    c->args.push_back(std::move(callee));
    parse_args(*c);
    return finish(std::move(c));
  }

  // One filter after '|' (already consumed): name and optional arguments; `input` may be null
  // (filter blocks).
  ExprPtr parse_filter(ExprPtr input) {
    const Pos p = cur().pos;
    auto f = node(Expr::Kind::Filter, p);
    f->name = expect_name();
    if (!is_known_filter(f->name)) fail(p, fmt::format("unknown filter '{}'", f->name));
    f->args.push_back(std::move(input));
    if (is_op("(")) parse_args(*f);
    return finish(std::move(f));
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    for (;;) {
      if (is_op("|")) {
        next();
        e = parse_filter(std::move(e));
      } else if (is_name("is")) {
        next();
        auto t = node(Expr::Kind::Test, cur().pos);
        t->negated = accept_name("not");
        const Pos p = cur().pos;
        t->name = expect_name();
        if (!is_known_test(t->name)) fail(p, fmt::format("unknown test '{}'", t->name));
        t->args.push_back(std::move(e));
        if (is_op("(")) {
          parse_args(*t);
        } else if ((cur().type == Tok::Name || cur().type == Tok::String || cur().type == Tok::Int ||
                    cur().type == Tok::Float || is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and")) {
          t->args.push_back(parse_postfix(parse_primary()));
        }
        e = finish(std::move(t));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  const std::vector<Token>& t_;
  size_t i_ = 0;
  int max_depth_;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Program parse(const std::vector<Token>& tokens, int max_depth) { return Parser(tokens, max_depth).run(); }

}  // namespace contrail::jinja
