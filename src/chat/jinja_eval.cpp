// Evaluator: statements with Jinja2's scoping (a for loop iteration and a macro call are scopes;
// if and set blocks are not), expressions with Python operator semantics.
#include "chat/jinja_eval.h"

#include <fmt/format.h>

#include <unordered_set>

#include <cmath>
#include <unordered_map>

#include "chat/jinja_builtins.h"
#include "contrail/core/error.h"

namespace contrail::jinja {
namespace {

// An Error that already names its template position (the innermost failing node).
class PositionedError : public Error {
 public:
  using Error::Error;
};

struct Scope {
  std::unordered_map<std::string, Value> vars;
  const Scope* parent = nullptr;
};

std::string binop_error(const char* op, const Value& a, const Value& b) {
  return fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op, a.type_name(), b.type_name());
}

class Interpreter {
 public:
  Interpreter(const ChatTemplateLimits& limits, const Value& context) : limits_(limits) {
    for (const auto& [k, v] : context.as_dict().items) globals_.vars[k] = v;
    root_.parent = &globals_;
  }

  // Namespaces are the only mutable containers, so the only way a template builds a reference
  // cycle ({% set ns.me = ns %}, {% set ns.x = [ns] %}), which shared ownership alone would leak.
  // Every namespace assigned to is emptied when the render ends, breaking any such cycle.
  ~Interpreter() {
    for (Value& ns : namespaces_) {
      Dict drop;  // ~Dict releases nested containers iteratively
      drop.items.swap(ns.as_dict().items);
    }
  }

  Rendered run(const Program& p) {
    TextBuilder out;
    out_stack_.push_back(&out);
    exec(p.body, root_);
    return Rendered{out.text(), out.taint()};
  }

 private:
  enum class Flow { Normal, Break, Continue };

  struct DepthGuard {
    Interpreter& in;
    DepthGuard(Interpreter& i) : in(i) {
      if (++in.depth_ > in.limits_.max_depth * 4)
        throw Error(fmt::format("recursion deeper than {} levels (recursive macro?)", in.limits_.max_depth * 4));
    }
    ~DepthGuard() { --in.depth_; }
  };

  [[noreturn]] static void fail_at(const Pos& p, const std::string& what) {
    throw PositionedError(fmt::format("chat template line {}:{}: {}", p.line, p.col, what));
  }

  void check_output(size_t more) const {
    if (out_stack_.back()->size() + more > limits_.max_output_bytes)
      throw Error(fmt::format("output exceeds the limit of {} bytes", limits_.max_output_bytes));
  }

  // Template text: trusted.
  void emit(std::string_view s) {
    check_output(s.size());
    out_stack_.back()->append_text(s);
  }

  // A printed value, with its taint.
  void emit_value(const Value& v) {
    if (!v.is_string()) return emit_value(as_text(v));
    check_output(v.as_string().size());
    out_stack_.back()->append(v);
  }

  // Renders `body` into a fresh buffer (macro calls, block set, filter blocks); the result keeps
  // the taint of what was printed.
  Value capture(const Body& body, Scope& scope) {
    TextBuilder buf;
    out_stack_.push_back(&buf);
    try {
      exec(body, scope);
    } catch (...) {
      out_stack_.pop_back();
      throw;
    }
    out_stack_.pop_back();
    return buf.take();
  }

  // ---- statements -----------------------------------------------------------------------------
  Flow exec(const Body& body, Scope& scope) {
    DepthGuard g(*this);
    for (const StmtPtr& s : body) {
      const Flow f = exec_stmt(*s, scope);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

  Flow exec_stmt(const Stmt& s, Scope& scope) {
    try {
      return exec_stmt_inner(s, scope);
    } catch (const TemplateException&) {
      throw;
    } catch (const PositionedError&) {
      throw;
    } catch (const Error& e) {
      fail_at(s.pos, e.what());
    }
  }

  Flow exec_stmt_inner(const Stmt& s, Scope& scope) {
    switch (s.kind) {
      case Stmt::Kind::Text: emit(s.text); return Flow::Normal;
      case Stmt::Kind::Output: emit_value(eval(*s.expr, scope)); return Flow::Normal;
      case Stmt::Kind::If:
        for (const auto& [cond, body] : s.branches)
          if (eval(*cond, scope).truthy()) return exec(body, scope);
        return exec(s.else_body, scope);
      case Stmt::Kind::For: return exec_for(s, scope);
      case Stmt::Kind::Set: {
        Value v = eval(*s.expr, scope);
        if (!s.attr.empty()) {
          const Value ns = lookup(s.targets[0], scope);
          if (!ns.is_dict() || !ns.as_dict().is_namespace)
            throw Error(fmt::format("cannot assign attribute '{}' on '{}', which is not a namespace()", s.attr, s.targets[0]));
          ns.as_dict().set(s.attr, std::move(v));
          if (assigned_.insert(&ns.as_dict()).second) namespaces_.push_back(ns);
        } else {
          assign(s.targets, v, scope);
        }
        return Flow::Normal;
      }
      case Stmt::Kind::SetBlock: {
        Value v = capture(s.body, scope);
        for (const ExprPtr& f : s.filters) v = apply_filter(*f, v, scope);
        scope.vars[s.targets[0]] = std::move(v);
        return Flow::Normal;
      }
      case Stmt::Kind::FilterBlock: {
        Value v = capture(s.body, scope);
        for (const ExprPtr& f : s.filters) v = apply_filter(*f, v, scope);
        emit_value(v);
        return Flow::Normal;
      }
      case Stmt::Kind::Macro: {
        // A macro defined inside a loop or macro sees that scope's variables as they are now, as
        // jinja2's closures do (the scope itself ends before a later call may come); one defined
        // at the top level sees the template's variables when it is called.
        std::shared_ptr<Scope> closure;
        if (&scope != &root_) {
          closure = std::make_shared<Scope>();
          for (const Scope* sc = &scope; sc && sc != &root_; sc = sc->parent)
            for (const auto& [k, v] : sc->vars) closure->vars.emplace(k, v);  // innermost wins
          closure->parent = &root_;
        }
        scope.vars[s.targets[0]] = macro_value(s, std::move(closure));
        return Flow::Normal;
      }
      case Stmt::Kind::Break: return Flow::Break;
      case Stmt::Kind::Continue: return Flow::Continue;
      case Stmt::Kind::Block: return exec(s.body, scope);
    }
    return Flow::Normal;
  }

  void assign(const std::vector<std::string>& targets, const Value& v, Scope& scope) {
    if (targets.size() == 1) {
      scope.vars[targets[0]] = v;
      return;
    }
    const List items = iterate(v);
    if (items.size() != targets.size())
      throw Error(fmt::format("cannot unpack {} values into {} names", items.size(), targets.size()));
    for (size_t i = 0; i < targets.size(); ++i) scope.vars[targets[i]] = items[i];
  }

  void count_iteration() {
    if (++iterations_ > limits_.max_loop_iterations)
      throw Error(fmt::format("more than {} loop iterations", limits_.max_loop_iterations));
  }

  Flow exec_for(const Stmt& s, Scope& scope) {
    List items = iterate(eval(*s.expr, scope));
    if (s.filter) {
      List kept;
      for (Value& item : items) {
        count_iteration();
        Scope probe{{}, &scope};
        assign(s.targets, item, probe);
        if (eval(*s.filter, probe).truthy()) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    const auto n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      count_iteration();
      Scope iter{{}, &scope};
      const auto u = static_cast<size_t>(i);
      assign(s.targets, items[u], iter);
      auto loop = std::make_shared<Dict>();
      loop->items = {{"index", Value(i + 1)},
                     {"index0", Value(i)},
                     {"revindex", Value(n - i)},
                     {"revindex0", Value(n - i - 1)},
                     {"first", Value(i == 0)},
                     {"last", Value(i == n - 1)},
                     {"length", Value(n)},
                     {"depth", Value(1)},
                     {"depth0", Value(0)},
                     {"previtem", i > 0 ? items[u - 1] : Value::undefined("there is no previous item")},
                     {"nextitem", i + 1 < n ? items[u + 1] : Value::undefined("there is no next item")}};
      loop->items.emplace_back("cycle", make_function("loop.cycle", [i](CallArgs& a) -> Value {
                                 if (a.args.empty()) throw Error("loop.cycle() needs at least one argument");
                                 return a.args[static_cast<size_t>(i) % a.args.size()];
                               }));
      iter.vars["loop"] = Value(std::move(loop));
      if (exec(s.body, iter) == Flow::Break) break;
    }
    if (n == 0) return exec(s.else_body, scope);
    return Flow::Normal;
  }

  Value macro_value(const Stmt& m, std::shared_ptr<const Scope> closure) {
    const Stmt* macro = &m;
    return make_function(m.targets[0], [this, macro, closure](CallArgs& a) { return call_macro(*macro, a, closure); });
  }

  Value call_macro(const Stmt& m, CallArgs& a, const std::shared_ptr<const Scope>& closure) {
    DepthGuard g(*this);
    const std::string& name = m.targets[0];
    if (a.args.size() > m.params.size())
      throw Error(fmt::format("macro '{}' takes not more than {} argument(s)", name, m.params.size()));
    Scope local{{}, closure ? closure.get() : &root_};
    if (closure) local.vars[name] = macro_value(m, closure);  // the macro can call itself
    std::vector<bool> set(m.params.size(), false);
    for (size_t i = 0; i < a.args.size(); ++i) {
      local.vars[m.params[i].name] = a.args[i];
      set[i] = true;
    }
    for (const auto& [k, v] : a.kwargs) {
      size_t i = 0;
      while (i < m.params.size() && m.params[i].name != k) ++i;
      if (i == m.params.size()) throw Error(fmt::format("macro '{}' takes no keyword argument '{}'", name, k));
      if (set[i]) throw Error(fmt::format("macro '{}' got multiple values for argument '{}'", name, k));
      local.vars[k] = v;
      set[i] = true;
    }
    for (size_t i = 0; i < m.params.size(); ++i)
      if (!set[i])
        local.vars[m.params[i].name] = m.params[i].default_value
                                           ? eval(*m.params[i].default_value, local)
                                           : Value::undefined(fmt::format("parameter '{}' was not provided", m.params[i].name));
    return capture(m.body, local);
  }

  // ---- expressions ----------------------------------------------------------------------------
  Value lookup(const std::string& name, const Scope& scope) const {
    for (const Scope* s = &scope; s; s = s->parent) {
      const auto it = s->vars.find(name);
      if (it != s->vars.end()) return it->second;
    }
    Value g = global_function(name, limits_);
    return g.is_undefined() ? Value::undefined(fmt::format("'{}' is undefined", name)) : g;
  }

  Value eval(const Expr& e, Scope& scope) {
    DepthGuard g(*this);
    Value v;
    try {
      v = eval_inner(e, scope);
    } catch (const TemplateException&) {
      throw;
    } catch (const PositionedError&) {
      throw;
    } catch (const Error& err) {
      fail_at(e.pos, err.what());
    }
    if (v.is_string() && v.as_string().size() > limits_.max_output_bytes)
      fail_at(e.pos, fmt::format("a string of {} bytes exceeds the limit of {}", v.as_string().size(), limits_.max_output_bytes));
    return v;
  }

  void eval_args(const Expr& e, size_t first, Scope& scope, CallArgs& out) {
    for (size_t i = first; i < e.args.size(); ++i) out.args.push_back(eval(*e.args[i], scope));
    for (const auto& [k, x] : e.kwargs) out.kwargs.emplace_back(k, eval(*x, scope));
  }

  Value apply_filter(const Expr& f, const Value& input, Scope& scope) {
    CallArgs args;
    eval_args(f, 1, scope, args);
    return call_filter(f.name, input, args, limits_);
  }

  Value eval_inner(const Expr& e, Scope& scope) {
    switch (e.kind) {
      case Expr::Kind::Literal: return e.value;
      case Expr::Kind::Name: return lookup(e.name, scope);
      case Expr::Kind::ListLit: {
        List items;
        for (const ExprPtr& x : e.args) items.push_back(eval(*x, scope));
        items.tuple = e.name == "tuple";
        return Value(std::move(items));
      }
      case Expr::Kind::DictLit: {
        auto d = std::make_shared<Dict>();
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          const Value k = eval(*e.args[i], scope);
          if (!k.is_string()) throw Error(fmt::format("dict keys must be strings, not {}", k.type_name()));
          if (k.taint()) d->untrusted_keys = true;
          d->set(k.as_string(), eval(*e.args[i + 1], scope));
        }
        return Value(std::move(d));
      }
      case Expr::Kind::GetAttr: return get_attr(eval(*e.args[0], scope), e.name, limits_);
      case Expr::Kind::GetItem: {
        const Value obj = eval(*e.args[0], scope);
        return get_item(obj, eval(*e.args[1], scope), limits_);
      }
      case Expr::Kind::Slice: {
        const Value obj = eval(*e.args[0], scope);
        Value part[3];
        for (int i = 0; i < 3; ++i)
          if (e.args[static_cast<size_t>(i) + 1]) part[i] = eval(*e.args[static_cast<size_t>(i) + 1], scope);
        return slice(obj, part[0], part[1], part[2]);
      }
      case Expr::Kind::Call: {
        const Value callee = eval(*e.args[0], scope);
        if (callee.is_undefined()) fail_undefined(callee);
        if (!callee.is_function()) throw Error(fmt::format("'{}' object is not callable", callee.type_name()));
        CallArgs args;
        eval_args(e, 1, scope, args);
        return callee.as_function().fn(args);
      }
      case Expr::Kind::Filter: return apply_filter(e, eval(*e.args[0], scope), scope);
      case Expr::Kind::Test: {
        const Value v = eval(*e.args[0], scope);
        CallArgs args;
        eval_args(e, 1, scope, args);
        return Value(call_test(e.name, v, args) != e.negated);
      }
      case Expr::Kind::Not: return Value(!eval(*e.args[0], scope).truthy());
      case Expr::Kind::Neg:
      case Expr::Kind::Pos: {
        const Value v = eval(*e.args[0], scope);
        if (v.is_undefined()) fail_undefined(v);
        if (!v.is_number()) throw Error(fmt::format("bad operand type for unary {}: '{}'", e.kind == Expr::Kind::Neg ? '-' : '+', v.type_name()));
        if (e.kind == Expr::Kind::Pos) return v.is_bool() ? Value(v.as_int()) : v;
        if (v.type() == Value::Type::Float) return Value(-v.as_float());
        if (v.as_int() == INT64_MIN) throw Error("integer overflow");
        return Value(-v.as_int());
      }
      case Expr::Kind::Binary: {
        const Value a = eval(*e.args[0], scope);
        return binary(e.name, a, eval(*e.args[1], scope));
      }
      case Expr::Kind::Compare: {
        Value left = eval(*e.args[0], scope);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value right = eval(*e.args[i + 1], scope);
          if (!compare(e.ops[i], left, right)) return Value(false);
          left = std::move(right);
        }
        return Value(true);
      }
      case Expr::Kind::And: {
        Value a = eval(*e.args[0], scope);
        return a.truthy() ? eval(*e.args[1], scope) : a;
      }
      case Expr::Kind::Or: {
        Value a = eval(*e.args[0], scope);
        return a.truthy() ? a : eval(*e.args[1], scope);
      }
      case Expr::Kind::Cond:
        if (eval(*e.args[1], scope).truthy()) return eval(*e.args[0], scope);
        if (e.args[2]) return eval(*e.args[2], scope);
        return Value::undefined(fmt::format("the inline if-expression on line {} evaluated to false and no else section was defined", e.pos.line));
    }
    return Value();
  }

  static bool contains(const Value& container, const Value& item) {
    if (container.is_string()) {
      if (item.is_undefined()) fail_undefined(item);
      if (!item.is_string()) throw Error(fmt::format("'in <string>' requires string as left operand, not {}", item.type_name()));
      return container.as_string().find(item.as_string()) != std::string::npos;
    }
    if (container.is_dict() && !container.as_dict().is_namespace)
      return item.is_string() && container.as_dict().find(item.as_string()) != nullptr;
    if (container.is_list()) {
      for (const Value& x : container.as_list())
        if (equals(x, item)) return true;
      return false;
    }
    if (container.is_undefined()) return false;
    throw Error(fmt::format("argument of type '{}' is not iterable", container.type_name()));
  }

  static bool compare(const std::string& op, const Value& a, const Value& b) {
    if (op == "==") return equals(a, b);
    if (op == "!=") return !equals(a, b);
    if (op == "<") return less(a, b);
    if (op == ">") return less(b, a);
    if (op == "<=") return !less(b, a);
    if (op == ">=") return !less(a, b);
    if (op == "in") return contains(b, a);
    return !contains(b, a);  // notin
  }

  Value binary(const std::string& op, const Value& a, const Value& b) const {
    if (op == "~") {
      TextBuilder s;
      s.append(a);
      s.append(b);
      return s.take();
    }
    if (a.is_undefined()) fail_undefined(a);
    if (b.is_undefined()) fail_undefined(b);
    const bool ints = a.is_int() && b.is_int();
    const bool nums = a.is_number() && b.is_number();
    int64_t r = 0;
    if (op == "+") {
      if (ints && !__builtin_add_overflow(a.as_int(), b.as_int(), &r)) return Value(r);
      if (nums && !ints) return Value(a.as_float() + b.as_float());
      if (a.is_string() && b.is_string()) {
        TextBuilder s;
        s.append(a);
        s.append(b);
        return s.take();
      }
      if (a.is_list() && b.is_list()) {
        check_size(a.as_list().size() + b.as_list().size(), limits_);
        List l = a.as_list();
        l.insert(l.end(), b.as_list().begin(), b.as_list().end());
        return Value(std::move(l));
      }
      if (ints) throw Error("integer overflow");
      if (a.is_string()) throw Error(fmt::format("can only concatenate str (not \"{}\") to str", b.type_name()));
      if (a.is_list()) throw Error(fmt::format("can only concatenate list (not \"{}\") to list", b.type_name()));
      throw Error(binop_error("+", a, b));
    }
    if (op == "-") {
      if (ints && !__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) return Value(r);
      if (nums && !ints) return Value(a.as_float() - b.as_float());
      throw Error(ints ? std::string("integer overflow") : binop_error("-", a, b));
    }
    if (op == "*") {
      if (ints && !__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) return Value(r);
      if (nums && !ints) return Value(a.as_float() * b.as_float());
      if ((a.is_string() || a.is_list()) && b.is_int()) return repeat(a, b.as_int());
      if (a.is_int() && (b.is_string() || b.is_list())) return repeat(b, a.as_int());
      throw Error(ints ? std::string("integer overflow") : binop_error("*", a, b));
    }
    if (!nums) throw Error(binop_error(op.c_str(), a, b));
    if (op == "/") {
      if (b.as_float() == 0) throw Error("division by zero");
      return Value(a.as_float() / b.as_float());
    }
    if (op == "//" || op == "%") {
      if (b.as_float() == 0) throw Error(op == "//" ? "integer division or modulo by zero" : "modulo by zero");
      if (ints) {
        if (a.as_int() == INT64_MIN && b.as_int() == -1) throw Error("integer overflow");
        int64_t q = a.as_int() / b.as_int(), m = a.as_int() % b.as_int();
        if (m != 0 && ((m < 0) != (b.as_int() < 0))) {  // Python floors
          --q;
          m += b.as_int();
        }
        return op == "//" ? Value(q) : Value(m);
      }
      const double x = a.as_float(), y = b.as_float();
      if (op == "//") return Value(std::floor(x / y));
      double m = std::fmod(x, y);
      if (m != 0 && ((m < 0) != (y < 0))) m += y;
      return Value(m);
    }
    // "**"
    if (ints && b.as_int() >= 0) {
      int64_t base = a.as_int(), exp = b.as_int(), acc = 1;
      while (exp > 0) {
        if ((exp & 1) && __builtin_mul_overflow(acc, base, &acc)) throw Error("integer overflow");
        exp >>= 1;
        if (exp > 0 && __builtin_mul_overflow(base, base, &base)) throw Error("integer overflow");
      }
      return Value(acc);
    }
    if (a.as_float() == 0 && b.as_float() < 0) throw Error("0.0 cannot be raised to a negative power");
    return Value(std::pow(a.as_float(), b.as_float()));
  }

  Value repeat(const Value& seq, int64_t n) const {
    if (n <= 0) return seq.is_string() ? Value(std::string()) : Value(List{});
    const size_t unit = seq.is_string() ? seq.as_string().size() : seq.as_list().size();
    if (unit > 0 && static_cast<uint64_t>(n) > limits_.max_output_bytes / unit)
      throw Error(fmt::format("repeating {} items {} times exceeds the limit of {}", unit, n, limits_.max_output_bytes));
    if (seq.is_string()) {
      TextBuilder s;
      for (int64_t i = 0; i < n; ++i) s.append(seq);
      return s.take();
    }
    List l;
    l.tuple = seq.as_list().tuple;
    for (int64_t i = 0; i < n; ++i) l.insert(l.end(), seq.as_list().begin(), seq.as_list().end());
    return Value(std::move(l));
  }

  const ChatTemplateLimits& limits_;
  Scope globals_;
  Scope root_;
  std::vector<TextBuilder*> out_stack_;
  std::vector<Value> namespaces_;           // namespaces assigned to during this render
  std::unordered_set<const Dict*> assigned_;
  int64_t iterations_ = 0;
  int depth_ = 0;
};

}  // namespace

Rendered render(const Program& program, const Value& context, const ChatTemplateLimits& limits) {
  return Interpreter(limits, context).run(program);
}

}  // namespace contrail::jinja
