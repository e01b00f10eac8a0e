#include "chat/jinja_value.h"

#include <fmt/format.h>
#include <utf8proc.h>

#include <algorithm>
#include <cmath>

#include "contrail/core/error.h"

namespace contrail::jinja {

Value::Value(std::string s, Taint taint) {
  if (taint.empty()) v_ = std::move(s);
  else v_ = std::make_shared<const Tainted>(Tainted{std::move(s), std::move(taint)});
}

Value Value::untrusted(std::string s) {
  const size_t n = s.size();
  return n == 0 ? Value(std::move(s)) : Value(std::move(s), Taint{{0, n}});
}

bool Value::truthy() const {
  switch (type()) {
    case Type::Undefined:
    case Type::None: return false;
    case Type::Bool: return as_bool();
    case Type::Int: return as_int() != 0;
    case Type::Float: return as_float() != 0.0;
    case Type::String: return !as_string().empty();
    case Type::List: return !as_list().empty();
    case Type::Dict: return as_dict().is_namespace || !as_dict().items.empty();
    case Type::Function: return true;
  }
  return false;
}

std::string Value::type_name() const {
  switch (type()) {
    case Type::Undefined: return "Undefined";
    case Type::None: return "NoneType";
    case Type::Bool: return "bool";
    case Type::Int: return "int";
    case Type::Float: return "float";
    case Type::String: return "str";
    case Type::List: return "list";
    case Type::Dict: return as_dict().is_namespace ? "Namespace" : "dict";
    case Type::Function: return "function";
  }
  return "?";
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}

void Dict::set(const std::string& key, Value v) {
  for (auto& [k, old] : items)
    if (k == key) {
      old = std::move(v);
      return;
    }
  items.emplace_back(key, std::move(v));
}

namespace {

// Containers whose last reference is dropped while another is being released wait here, so that
// releasing deeply nested data is a loop, not a recursion.
thread_local std::vector<Value> t_pending;
thread_local bool t_draining = false;

template <class ForEachChild>
void release_children(ForEachChild&& for_each_child) {
  for_each_child([](Value& v) {
    if (v.is_list() || v.is_dict()) t_pending.push_back(std::move(v));
  });
  if (t_draining) return;
  t_draining = true;
  while (!t_pending.empty()) {
    Value v = std::move(t_pending.back());
    t_pending.pop_back();
  }  // v is destroyed here; a container it held last queues its own children
  t_draining = false;
}

[[noreturn]] void fail_depth() {
  throw Error(fmt::format("value nested deeper than the limit of {} levels", kMaxValueDepth));
}

}  // namespace

List::~List() {
  release_children([this](auto&& queue) {
    for (Value& v : *this) queue(v);
  });
}

Dict::~Dict() {
  release_children([this](auto&& queue) {
    for (auto& kv : items) queue(kv.second);
  });
}

Value make_tuple(List items) {
  items.tuple = true;
  return Value(std::move(items));
}

Value make_dict(std::vector<std::pair<std::string, Value>> items) {
  auto d = std::make_shared<Dict>();
  for (auto& [k, v] : items) d->set(k, std::move(v));
  return Value(std::move(d));
}

Value make_function(std::string name, std::function<Value(CallArgs&)> fn) {
  return Value(std::make_shared<const Function>(Function{std::move(name), std::move(fn)}));
}

namespace {

// Python float repr: shortest round-trip digits, exponent form outside [1e-4, 1e16).
std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  std::string s = fmt::format("{}", d);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string string_repr(const std::string& s) {
  const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = dq ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == static_cast<unsigned char>(q)) out += std::string("\\") + q;
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  return out + q;
}

void json_string(const std::string& s, std::string& out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) out += fmt::format("\\u{:04x}", c);
        else out += static_cast<char>(c);
    }
  }
  out += '"';
}

struct JsonWriter {
  int indent;
  bool sort_keys;
  std::string_view item_sep, key_sep;
  std::string out;

  void newline(int level) {
    out += '\n';
    out.append(static_cast<size_t>(indent) * static_cast<size_t>(level), ' ');
  }

  void write(const Value& v, int level) {
    if (level > kMaxValueDepth) fail_depth();
    switch (v.type()) {
      case Value::Type::None: out += "null"; return;
      case Value::Type::Bool: out += v.as_bool() ? "true" : "false"; return;
      case Value::Type::Int: out += std::to_string(v.as_int()); return;
      case Value::Type::Float: {
        const double d = v.as_float();
        out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d > 0 ? "Infinity" : "-Infinity") : float_repr(d);
        return;
      }
      case Value::Type::String: json_string(v.as_string(), out); return;
      case Value::Type::List: {
        const List& l = v.as_list();
        if (l.empty()) {
          out += "[]";
          return;
        }
        out += '[';
        for (size_t i = 0; i < l.size(); ++i) {
          if (i) out += item_sep;
          if (indent >= 0) newline(level + 1);
          write(l[i], level + 1);
        }
        if (indent >= 0) newline(level);
        out += ']';
        return;
      }
      case Value::Type::Dict: {
        if (v.as_dict().is_namespace) break;
        std::vector<const std::pair<std::string, Value>*> items;
        for (const auto& kv : v.as_dict().items) items.push_back(&kv);
        if (sort_keys) std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
        if (items.empty()) {
          out += "{}";
          return;
        }
        out += '{';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) out += item_sep;
          if (indent >= 0) newline(level + 1);
          json_string(items[i]->first, out);
          out += key_sep;
          write(items[i]->second, level + 1);
        }
        if (indent >= 0) newline(level);
        out += '}';
        return;
      }
      case Value::Type::Undefined:
      case Value::Type::Function: break;
    }
    throw Error(fmt::format("Object of type {} is not JSON serializable", v.type_name()));
  }
};

bool is_py_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
         cp == 0x3000;
}

// Decodes one code point at s[i]; invalid bytes decode as themselves (one byte, cp = byte | 0x80000000).
uint32_t decode_at(std::string_view s, size_t i, size_t& len) {
  utf8proc_int32_t cp = 0;
  const utf8proc_ssize_t n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                              static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
  if (n <= 0) {
    len = 1;
    return 0x80000000u | static_cast<unsigned char>(s[i]);
  }
  len = static_cast<size_t>(n);
  return static_cast<uint32_t>(cp);
}

void encode(uint32_t cp, std::string& out) {
  if (cp & 0x80000000u) {
    out += static_cast<char>(cp & 0xff);
    return;
  }
  utf8proc_uint8_t buf[4];
  const auto n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(cp), buf);
  out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

bool is_cased(uint32_t cp) {
  if (cp & 0x80000000u) return false;
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT;
}

template <class F>
std::string map_codepoints(std::string_view s, F&& f) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    const uint32_t cp = decode_at(s, i, len);
    encode(f(cp), out);
    i += len;
  }
  return out;
}

uint32_t upper(uint32_t cp) { return cp & 0x80000000u ? cp : static_cast<uint32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(cp))); }
uint32_t lower(uint32_t cp) { return cp & 0x80000000u ? cp : static_cast<uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))); }
uint32_t title(uint32_t cp) { return cp & 0x80000000u ? cp : static_cast<uint32_t>(utf8proc_totitle(static_cast<utf8proc_int32_t>(cp))); }

}  // namespace

std::string to_str(const Value& v) {
  switch (v.type()) {
    case Value::Type::Undefined: return "";
    case Value::Type::None: return "None";
    case Value::Type::Bool: return v.as_bool() ? "True" : "False";
    case Value::Type::Int: return std::to_string(v.as_int());
    case Value::Type::Float: return float_repr(v.as_float());
    case Value::Type::String: return v.as_string();
    default: return repr(v);
  }
}

namespace {

// Python repr; `open` holds the namespaces being printed (a namespace inside itself prints as
// Python's recursive repr does).
void repr_into(const Value& v, int depth, std::vector<const Dict*>& open, std::string& out) {
  if (depth > kMaxValueDepth) fail_depth();
  switch (v.type()) {
    case Value::Type::String: out += string_repr(v.as_string()); return;
    case Value::Type::Undefined: out += "Undefined"; return;
    case Value::Type::List: {
      const List& l = v.as_list();
      out += l.tuple ? '(' : '[';
      for (size_t i = 0; i < l.size(); ++i) {
        if (i) out += ", ";
        repr_into(l[i], depth + 1, open, out);
      }
      if (l.tuple && l.size() == 1) out += ',';
      out += l.tuple ? ')' : ']';
      return;
    }
    case Value::Type::Dict: {
      const Dict& d = v.as_dict();
      if (d.is_namespace) {
        if (std::find(open.begin(), open.end(), &d) != open.end()) {
          out += "<Namespace {...}>";
          return;
        }
        out += "<Namespace ";
        open.push_back(&d);
      }
      out += '{';
      bool first = true;
      for (const auto& [k, x] : d.items) {
        if (!first) out += ", ";
        out += string_repr(k);
        out += ": ";
        repr_into(x, depth + 1, open, out);
        first = false;
      }
      out += '}';
      if (d.is_namespace) {
        open.pop_back();
        out += '>';
      }
      return;
    }
    case Value::Type::Function: out += "<function " + v.as_function().name + ">"; return;
    default: out += to_str(v); return;
  }
}

bool equals_at(const Value& a, const Value& b, int depth) {
  using T = Value::Type;
  if (depth > kMaxValueDepth) fail_depth();
  if (a.is_number() && b.is_number()) {
    if (a.type() != T::Float && b.type() != T::Float) return a.as_int() == b.as_int();
    return a.as_float() == b.as_float();
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case T::Undefined:
    case T::None: return true;
    case T::String: return a.as_string() == b.as_string();
    case T::List: {
      const List &x = a.as_list(), &y = b.as_list();
      if (&x == &y) return true;
      if (x.size() != y.size() || x.tuple != y.tuple) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!equals_at(x[i], y[i], depth + 1)) return false;
      return true;
    }
    case T::Dict: {
      const Dict &x = a.as_dict(), &y = b.as_dict();
      if (x.is_namespace || y.is_namespace || &x == &y) return &x == &y;
      if (x.items.size() != y.items.size()) return false;
      for (const auto& [k, v] : x.items) {
        const Value* w = y.find(k);
        if (!w || !equals_at(v, *w, depth + 1)) return false;
      }
      return true;
    }
    case T::Function: return &a.as_function() == &b.as_function();
    default: return false;
  }
}

}  // namespace

std::string repr(const Value& v) {
  std::vector<const Dict*> open;
  std::string out;
  repr_into(v, 0, open, out);
  return out;
}

std::string to_json(const Value& v, int indent, bool sort_keys, std::string_view item_sep, std::string_view key_sep) {
  JsonWriter w{indent, sort_keys, item_sep.empty() ? (indent >= 0 ? "," : ", ") : item_sep,
               key_sep.empty() ? ": " : key_sep, {}};
  w.write(v, 0);
  return std::move(w.out);
}

bool equals(const Value& a, const Value& b) { return equals_at(a, b, 0); }

std::vector<size_t> codepoint_offsets(std::string_view s) {
  std::vector<size_t> offs;
  for (size_t i = 0; i < s.size();) {
    offs.push_back(i);
    size_t len = 0;
    decode_at(s, i, len);
    i += len;
  }
  offs.push_back(s.size());
  return offs;
}

size_t codepoint_count(std::string_view s) { return codepoint_offsets(s).size() - 1; }

std::string str_upper(std::string_view s) { return map_codepoints(s, upper); }
std::string str_lower(std::string_view s) { return map_codepoints(s, lower); }

std::string str_title(std::string_view s) {
  bool prev_cased = false;
  return map_codepoints(s, [&](uint32_t cp) {
    const uint32_t r = prev_cased ? lower(cp) : title(cp);
    prev_cased = is_cased(cp);
    return r;
  });
}

std::string str_capitalize(std::string_view s) {
  bool first = true;
  return map_codepoints(s, [&](uint32_t cp) {
    const uint32_t r = first ? title(cp) : lower(cp);
    first = false;
    return r;
  });
}

std::pair<size_t, size_t> str_strip_bounds(std::string_view s, const std::string* chars, bool left, bool right) {
  std::vector<uint32_t> set;
  if (chars)
    for (size_t i = 0; i < chars->size();) {
      size_t len = 0;
      set.push_back(decode_at(*chars, i, len));
      i += len;
    }
  auto strip_cp = [&](uint32_t cp) {
    return chars ? std::find(set.begin(), set.end(), cp) != set.end() : is_py_space(cp);
  };
  const std::vector<size_t> offs = codepoint_offsets(s);
  size_t b = 0, e = offs.size() - 1;  // code point range [b, e)
  size_t len = 0;
  if (left)
    while (b < e && strip_cp(decode_at(s, offs[b], len))) ++b;
  if (right)
    while (e > b && strip_cp(decode_at(s, offs[e - 1], len))) --e;
  return {offs[b], offs[e]};
}

std::string str_strip(std::string_view s, const std::string* chars, bool left, bool right) {
  const auto [b, e] = str_strip_bounds(s, chars, left, right);
  return std::string(s.substr(b, e - b));
}

// ---- taint ----------------------------------------------------------------------------------------

namespace {

// `seen` holds the dicts being visited (namespaces may contain themselves).
bool deep_tainted_at(const Value& v, int depth, std::vector<const Dict*>& seen) {
  if (depth > kMaxValueDepth) return true;
  switch (v.type()) {
    case Value::Type::String: return v.taint() != nullptr;
    case Value::Type::List:
      for (const Value& x : v.as_list())
        if (deep_tainted_at(x, depth + 1, seen)) return true;
      return false;
    case Value::Type::Dict: {
      const Dict& d = v.as_dict();
      if (d.untrusted_keys) return true;
      if (std::find(seen.begin(), seen.end(), &d) != seen.end()) return false;
      seen.push_back(&d);
      for (const auto& kv : d.items)
        if (deep_tainted_at(kv.second, depth + 1, seen)) return true;
      seen.pop_back();
      return false;
    }
    default: return false;
  }
}

}  // namespace

bool deep_tainted(const Value& v) {
  if (v.is_string()) return v.taint() != nullptr;
  if (!v.is_list() && !v.is_dict()) return false;
  std::vector<const Dict*> seen;
  return deep_tainted_at(v, 0, seen);
}

Value key_value(const Dict& d, const std::string& k) { return d.untrusted_keys ? Value::untrusted(k) : Value(k); }

Value substr(const Value& str, size_t b, size_t e) {
  const std::string& s = str.as_string();
  if (b == 0 && e == s.size()) return str;
  TextBuilder out;
  out.append_part(str, b, e);
  return out.take();
}

Value as_text(const Value& v) {
  if (v.is_string()) return v;
  std::string s = to_str(v);
  return deep_tainted(v) ? Value::untrusted(std::move(s)) : Value(std::move(s));
}

Value taint_whole_if(std::string result, std::initializer_list<const Value*> inputs) {
  for (const Value* in : inputs)
    if (deep_tainted(*in)) return Value::untrusted(std::move(result));
  return Value(std::move(result));
}

void TextBuilder::mark(size_t b, size_t e) {
  if (b >= e) return;
  if (!taint_.empty() && taint_.back().end >= b) {
    taint_.back().end = std::max(taint_.back().end, e);
    return;
  }
  taint_.push_back({b, e});
}

void TextBuilder::append_text(std::string_view s, bool untrusted) {
  const size_t at = text_.size();
  text_ += s;
  if (untrusted) mark(at, text_.size());
}

void TextBuilder::append(const Value& v) {
  if (v.is_string()) {
    append_part(v, 0, v.as_string().size());
    return;
  }
  append_text(to_str(v), deep_tainted(v));
}

void TextBuilder::append_part(const Value& str, size_t b, size_t e) {
  const std::string& s = str.as_string();
  const size_t at = text_.size();
  text_.append(s, b, e - b);
  const Taint* t = str.taint();
  if (!t) return;
  // The ranges overlapping [b, e), clipped and moved to where the bytes now are.
  auto it = std::lower_bound(t->begin(), t->end(), b, [](const ByteRange& r, size_t pos) { return r.end <= pos; });
  for (; it != t->end() && it->begin < e; ++it) mark(at + std::max(it->begin, b) - b, at + std::min(it->end, e) - b);
}

Value TextBuilder::take() {
  Value v(std::move(text_), std::move(taint_));
  text_.clear();
  taint_.clear();
  return v;
}

}  // namespace contrail::jinja
