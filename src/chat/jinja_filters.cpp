// Jinja2's built-in filters and tests that chat templates use, with Jinja2 3.x semantics, and
// HF transformers' tojson (ensure_ascii=False, no HTML escaping).
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <unordered_map>

#include "chat/jinja_ast.h"
#include "chat/jinja_builtins.h"
#include "contrail/core/error.h"

namespace contrail::jinja {
namespace {

using L = ChatTemplateLimits;
using FilterFn = Value (*)(const Value& in, CallArgs& a, const L& limits);
using TestFn = bool (*)(const Value& v, CallArgs& a);

int64_t as_int_arg(const Value& v, int64_t dflt, const char* what) {
  if (!given(v)) return dflt;
  if (!v.is_int()) throw Error(fmt::format("{} must be an integer, not {}", what, v.type_name()));
  return v.as_int();
}

size_t length_of(const Value& v) {
  switch (v.type()) {
    case Value::Type::Undefined: return 0;
    case Value::Type::String: return codepoint_count(v.as_string());
    case Value::Type::List: return v.as_list().size();
    case Value::Type::Dict: return v.as_dict().items.size();
    default: throw Error(fmt::format("object of type '{}' has no len()", v.type_name()));
  }
}

// Jinja's attribute lookup for filters: "a.b.0" walks dicts and list indices.
Value attribute_of(const Value& item, const Value& attr, const L& limits) {
  if (attr.is_int()) return get_item(item, attr, limits);
  if (!attr.is_string()) throw Error("attribute name must be a string");
  Value v = item;
  const std::string& path = attr.as_string();
  size_t i = 0;
  for (;;) {
    const size_t dot = path.find('.', i);
    const std::string part = path.substr(i, dot == std::string::npos ? std::string::npos : dot - i);
    const bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    v = numeric ? get_item(v, Value(static_cast<int64_t>(std::stoll(part))), limits) : get_item(v, Value(part), limits);
    if (dot == std::string::npos) return v;
    i = dot + 1;
  }
}

// Sort key: lower-cased strings unless case_sensitive.
Value sort_key(const Value& v, bool case_sensitive) {
  return !case_sensitive && v.is_string() ? Value(str_lower(v.as_string())) : v;
}

// ---- filters ------------------------------------------------------------------------------------

Value f_length(const Value& in, CallArgs& a, const L&) {
  bind_args(a, "length", {});
  return Value(static_cast<int64_t>(length_of(in)));
}

Value f_trim(const Value& in, CallArgs& a, const L&) {
  const auto p = bind_args(a, "trim", {"chars"});
  const std::string chars = given(p[0]) && !p[0].is_none() ? to_str(p[0]) : std::string();
  const Value text = as_text(in);
  const auto [b, e] = str_strip_bounds(text.as_string(), given(p[0]) && !p[0].is_none() ? &chars : nullptr, true, true);
  return substr(text, b, e);
}

Value f_case(const Value& in, CallArgs& a, const L&, std::string (*fn)(std::string_view)) {
  bind_args(a, "case filter", {});
  if (in.is_undefined() && !in.undefined_hint().empty()) return Value(fn(""));
  return taint_whole_if(fn(to_str(in)), {&in});
}
Value f_upper(const Value& in, CallArgs& a, const L& l) { return f_case(in, a, l, str_upper); }
Value f_lower(const Value& in, CallArgs& a, const L& l) { return f_case(in, a, l, str_lower); }
Value f_capitalize(const Value& in, CallArgs& a, const L& l) { return f_case(in, a, l, str_capitalize); }

// Jinja's title filter: upper-cases the first character of each word, words beginning after
// runs of "-", whitespace, "(", "{", "[" or "<"; lower-cases the rest.
Value f_title(const Value& in, CallArgs& a, const L&) {
  bind_args(a, "title", {});
  const std::string s = to_str(in);
  const auto offs = codepoint_offsets(s);
  std::string out;
  bool word_start = true;
  for (size_t i = 0; i + 1 < offs.size(); ++i) {
    const std::string_view cp(s.data() + offs[i], offs[i + 1] - offs[i]);
    const bool sep = cp.size() == 1 && std::string_view("- \t\n\r\f\v({[<").find(cp[0]) != std::string_view::npos;
    out += sep ? std::string(cp) : word_start ? str_upper(cp) : str_lower(cp);
    word_start = sep;
  }
  return taint_whole_if(std::move(out), {&in});
}

Value f_string(const Value& in, CallArgs& a, const L&) {
  bind_args(a, "string", {});
  return as_text(in);
}

Value f_safe(const Value& in, CallArgs& a, const L&) {
  bind_args(a, "safe", {});
  return in;
}

Value f_escape(const Value& in, CallArgs& a, const L&) {
  bind_args(a, "escape", {});
  std::string out;
  for (char c : to_str(in)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return taint_whole_if(std::move(out), {&in});
}

Value f_replace(const Value& in, CallArgs& a, const L& limits) {
  const auto p = bind_args(a, "replace", {"old", "new", "count"});
  CallArgs m;
  m.args = {p[0], p[1]};
  if (given(p[2])) m.args.push_back(p[2]);
  Value method = get_attr(as_text(in), "replace", limits);
  return method.as_function().fn(m);
}

Value f_default(const Value& in, CallArgs& a, const L&) {
  const auto p = bind_args(a, "default", {"default_value", "boolean"});
  const bool boolean = given(p[1]) && p[1].truthy();
  if (in.is_undefined() || (boolean && !in.truthy())) return given(p[0]) ? p[0] : Value("");
  return in;
}

Value f_first(const Value& in, CallArgs& a, const L&) {
  bind_args(a, "first", {});
  const List items = iterate(in);
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value f_last(const Value& in, CallArgs& a, const L&) {
  bind_args(a, "last", {});
  const List items = iterate(in);
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

Value f_list(const Value& in, CallArgs& a, const L&) {
  bind_args(a, "list", {});
  return Value(iterate(in));
}

Value f_items(const Value& in, CallArgs& a, const L&) {
  bind_args(a, "items", {});
  if (in.is_undefined()) return Value(List{});
  if (!in.is_dict()) throw Error(fmt::format("items filter: can only get item pairs from a mapping, not {}", in.type_name()));
  List out;
  for (const auto& [k, v] : in.as_dict().items) out.push_back(make_tuple(List{key_value(in.as_dict(), k), v}));
  return Value(std::move(out));
}

Value f_join(const Value& in, CallArgs& a, const L& limits) {
  const auto p = bind_args(a, "join", {"d", "attribute"});
  const Value sep = given(p[0]) ? as_text(p[0]) : Value(std::string());
  TextBuilder out;
  bool first = true;
  for (const Value& v : iterate(in)) {
    if (!first) out.append(sep);
    out.append(given(p[1]) ? attribute_of(v, p[1], limits) : v);
    check_size(out.size(), limits);
    first = false;
  }
  return out.take();
}

Value f_tojson(const Value& in, CallArgs& a, const L& limits) {
  const auto p = bind_args(a, "tojson", {"ensure_ascii", "indent", "separators", "sort_keys"});
  std::string item_sep, key_sep;
  if (given(p[2]) && !p[2].is_none()) {
    if (!p[2].is_list() || p[2].as_list().size() != 2 || !p[2].as_list()[0].is_string() || !p[2].as_list()[1].is_string())
      throw Error("tojson: separators must be a pair of strings");
    item_sep = p[2].as_list()[0].as_string();
    key_sep = p[2].as_list()[1].as_string();
  }
  const int64_t indent = given(p[1]) && !p[1].is_none() ? as_int_arg(p[1], -1, "tojson indent") : -1;
  if (indent > 64) throw Error(fmt::format("tojson: indent {} exceeds the limit of 64", indent));
  std::string json = to_json(in, static_cast<int>(std::max<int64_t>(indent, -1)), given(p[3]) && p[3].truthy(), item_sep, key_sep);
  check_size(json.size(), limits);
  if (!(given(p[0]) && p[0].truthy())) return taint_whole_if(std::move(json), {&in});
  // ensure_ascii: non-ASCII code points (only inside strings) as \uXXXX, UTF-16 surrogate pairs.
  std::string out;
  const auto offs = codepoint_offsets(json);
  for (size_t i = 0; i + 1 < offs.size(); ++i) {
    const std::string_view cp(json.data() + offs[i], offs[i + 1] - offs[i]);
    if (cp.size() == 1) {
      out += cp;
      continue;
    }
    uint32_t c = static_cast<unsigned char>(cp[0]) & (cp.size() == 2 ? 0x1f : cp.size() == 3 ? 0x0f : 0x07);
    for (size_t k = 1; k < cp.size(); ++k) c = (c << 6) | (static_cast<unsigned char>(cp[k]) & 0x3f);
    if (c >= 0x10000) {
      c -= 0x10000;
      out += fmt::format("\\u{:04x}\\u{:04x}", 0xd800 + (c >> 10), 0xdc00 + (c & 0x3ff));
    } else {
      out += fmt::format("\\u{:04x}", c);
    }
  }
  return taint_whole_if(std::move(out), {&in});
}

Value f_int(const Value& in, CallArgs& a, const L&) {
  const auto p = bind_args(a, "int", {"default", "base"});
  const Value dflt = given(p[0]) ? p[0] : Value(int64_t{0});
  if (in.is_int()) return Value(in.as_int());
  if (in.type() == Value::Type::Float)
    return std::isfinite(in.as_float()) && std::fabs(in.as_float()) < 9.2e18 ? Value(static_cast<int64_t>(in.as_float())) : dflt;
  if (in.is_string()) {
    const std::string s = str_strip(in.as_string(), nullptr, true, true);
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(s.c_str(), &end, static_cast<int>(as_int_arg(p[1], 10, "int base")));
    if (!s.empty() && end == s.c_str() + s.size() && errno == 0) return Value(static_cast<int64_t>(v));
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size() && std::isfinite(d) && std::fabs(d) < 9.2e18) return Value(static_cast<int64_t>(d));
  }
  return dflt;
}

Value f_float(const Value& in, CallArgs& a, const L&) {
  const auto p = bind_args(a, "float", {"default"});
  if (in.is_number()) return Value(in.as_float());
  if (in.is_string()) {
    const std::string s = str_strip(in.as_string(), nullptr, true, true);
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size()) return Value(d);
  }
  return given(p[0]) ? p[0] : Value(0.0);
}

Value f_abs(const Value& in, CallArgs& a, const L&) {
  bind_args(a, "abs", {});
  if (in.type() == Value::Type::Float) return Value(std::fabs(in.as_float()));
  if (in.is_int()) {
    if (in.as_int() == INT64_MIN) throw Error("integer overflow in abs");
    return Value(in.as_int() < 0 ? -in.as_int() : in.as_int());
  }
  throw Error(fmt::format("bad operand type for abs(): '{}'", in.type_name()));
}

Value f_round(const Value& in, CallArgs& a, const L&) {
  const auto p = bind_args(a, "round", {"precision", "method"});
  if (!in.is_number()) throw Error(fmt::format("round filter: expected a number, not {}", in.type_name()));
  const int64_t prec = as_int_arg(p[0], 0, "round precision");
  if (prec < -20 || prec > 20) throw Error(fmt::format("round precision {} outside [-20, 20]", prec));
  const std::string method = given(p[1]) ? to_str(p[1]) : "common";
  const double scale = std::pow(10.0, static_cast<double>(prec)), x = in.as_float() * scale;
  double r = 0;
  if (method == "common") r = std::nearbyint(x);
  else if (method == "ceil") r = std::ceil(x);
  else if (method == "floor") r = std::floor(x);
  else throw Error("round filter: method must be 'common', 'ceil' or 'floor'");
  return Value(r / scale);
}

Value f_reverse(const Value& in, CallArgs& a, const L&) {
  bind_args(a, "reverse", {});
  List items = iterate(in);
  std::reverse(items.begin(), items.end());
  if (!in.is_string()) return Value(std::move(items));
  TextBuilder s;
  for (const Value& v : items) s.append(v);
  return s.take();
}

// select/reject (attr_mode false) and selectattr/rejectattr (true).
Value select_impl(const Value& in, CallArgs& a, const L& limits, bool attr_mode, bool keep_when) {
  size_t next = 0;
  Value attr;
  if (attr_mode) {
    if (a.args.empty()) throw Error("selectattr/rejectattr: missing attribute name");
    attr = a.args[next++];
  }
  std::string test;
  if (next < a.args.size()) test = to_str(a.args[next++]);
  if (!test.empty() && !is_known_test(test)) throw Error(fmt::format("no test named '{}'", test));
  CallArgs targs;
  targs.args.assign(a.args.begin() + static_cast<ptrdiff_t>(next), a.args.end());
  targs.kwargs = a.kwargs;
  List out;
  for (const Value& item : iterate(in)) {
    const Value v = attr_mode ? attribute_of(item, attr, limits) : item;
    const bool ok = test.empty() ? v.truthy() : call_test(test, v, targs);
    if (ok == keep_when) out.push_back(item);
  }
  return Value(std::move(out));
}
Value f_select(const Value& in, CallArgs& a, const L& l) { return select_impl(in, a, l, false, true); }
Value f_reject(const Value& in, CallArgs& a, const L& l) { return select_impl(in, a, l, false, false); }
Value f_selectattr(const Value& in, CallArgs& a, const L& l) { return select_impl(in, a, l, true, true); }
Value f_rejectattr(const Value& in, CallArgs& a, const L& l) { return select_impl(in, a, l, true, false); }

Value f_map(const Value& in, CallArgs& a, const L& limits) {
  List out;
  const Value* attr = nullptr;
  const Value* dflt = nullptr;
  for (const auto& [k, v] : a.kwargs) {
    if (k == "attribute") attr = &v;
    else if (k == "default") dflt = &v;
  }
  if (attr) {
    if (!a.args.empty() || a.kwargs.size() != (dflt ? 2u : 1u)) throw Error("map: attribute= takes only default=");
    for (const Value& item : iterate(in)) {
      Value v = attribute_of(item, *attr, limits);
      out.push_back(v.is_undefined() && dflt ? *dflt : v);
    }
    return Value(std::move(out));
  }
  if (a.args.empty()) throw Error("map: needs a filter name or attribute=");
  const std::string filter = to_str(a.args[0]);
  if (!is_known_filter(filter)) throw Error(fmt::format("no filter named '{}'", filter));
  CallArgs fargs;
  fargs.args.assign(a.args.begin() + 1, a.args.end());
  fargs.kwargs = a.kwargs;
  for (const Value& item : iterate(in)) {
    CallArgs copy = fargs;
    out.push_back(call_filter(filter, item, copy, limits));
  }
  return Value(std::move(out));
}

Value f_sort(const Value& in, CallArgs& a, const L& limits) {
  const auto p = bind_args(a, "sort", {"reverse", "case_sensitive", "attribute"});
  const bool rev = given(p[0]) && p[0].truthy(), cs = given(p[1]) && p[1].truthy();
  List items = iterate(in);
  std::vector<std::pair<Value, Value>> keyed;  // (key, item)
  for (const Value& v : items) keyed.emplace_back(sort_key(given(p[2]) ? attribute_of(v, p[2], limits) : v, cs), v);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return rev ? less(y.first, x.first) : less(x.first, y.first);
  });
  List out;
  for (auto& kv : keyed) out.push_back(std::move(kv.second));
  return Value(std::move(out));
}

Value f_dictsort(const Value& in, CallArgs& a, const L&) {
  const auto p = bind_args(a, "dictsort", {"case_sensitive", "by", "reverse"});
  if (!in.is_dict()) throw Error(fmt::format("dictsort: expected a dict, not {}", in.type_name()));
  const bool cs = given(p[0]) && p[0].truthy(), rev = given(p[2]) && p[2].truthy();
  const std::string by = given(p[1]) ? to_str(p[1]) : "key";
  if (by != "key" && by != "value") throw Error("dictsort: 'by' must be 'key' or 'value'");
  List out;
  for (const auto& [k, v] : in.as_dict().items) out.push_back(make_tuple(List{key_value(in.as_dict(), k), v}));
  const size_t idx = by == "key" ? 0 : 1;
  std::stable_sort(out.begin(), out.end(), [&](const Value& x, const Value& y) {
    const Value kx = sort_key(x.as_list()[idx], cs), ky = sort_key(y.as_list()[idx], cs);
    return rev ? less(ky, kx) : less(kx, ky);
  });
  return Value(std::move(out));
}

Value f_unique(const Value& in, CallArgs& a, const L& limits) {
  const auto p = bind_args(a, "unique", {"case_sensitive", "attribute"});
  const bool cs = given(p[0]) && p[0].truthy();
  List out, seen;
  for (const Value& v : iterate(in)) {
    const Value key = sort_key(given(p[1]) ? attribute_of(v, p[1], limits) : v, cs);
    if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); })) {
      seen.push_back(key);
      out.push_back(v);
    }
  }
  return Value(std::move(out));
}

Value minmax(const Value& in, CallArgs& a, const L& limits, bool want_max) {
  const auto p = bind_args(a, want_max ? "max" : "min", {"case_sensitive", "attribute"});
  const bool cs = given(p[0]) && p[0].truthy();
  const List items = iterate(in);
  if (items.empty()) return Value::undefined(fmt::format("No aggregated item, sequence was empty."));
  const Value* best = &items[0];
  Value best_key = sort_key(given(p[1]) ? attribute_of(items[0], p[1], limits) : items[0], cs);
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = sort_key(given(p[1]) ? attribute_of(items[i], p[1], limits) : items[i], cs);
    if (want_max ? less(best_key, k) : less(k, best_key)) {
      best = &items[i];
      best_key = std::move(k);
    }
  }
  return *best;
}
Value f_max(const Value& in, CallArgs& a, const L& l) { return minmax(in, a, l, true); }
Value f_min(const Value& in, CallArgs& a, const L& l) { return minmax(in, a, l, false); }

Value f_sum(const Value& in, CallArgs& a, const L& limits) {
  const auto p = bind_args(a, "sum", {"attribute", "start"});
  Value total = given(p[1]) ? p[1] : Value(int64_t{0});
  for (const Value& v : iterate(in)) {
    const Value x = given(p[0]) ? attribute_of(v, p[0], limits) : v;
    if (!total.is_number() || !x.is_number()) throw Error(fmt::format("sum: cannot add {} and {}", total.type_name(), x.type_name()));
    int64_t r = 0;
    if (total.type() != Value::Type::Float && x.type() != Value::Type::Float && !__builtin_add_overflow(total.as_int(), x.as_int(), &r))
      total = Value(r);
    else
      total = Value(total.as_float() + x.as_float());
  }
  return total;
}

// The byte range of each line of s, as str.splitlines() splits (no final empty line).
std::vector<ByteRange> split_lines(const std::string& s) {
  std::vector<ByteRange> lines;
  size_t begin = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == '\x1c' || c == '\x1d' || c == '\x1e') {
      lines.push_back({begin, i});
      if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      begin = i + 1;
    }
  }
  if (begin < s.size()) lines.push_back({begin, s.size()});
  return lines;
}

// Lines keep their taint; the indentation carries the width argument's (a string) or none.
Value f_indent(const Value& in, CallArgs& a, const L& limits) {
  const auto p = bind_args(a, "indent", {"width", "first", "blank"});
  Value ind = given(p[0]) && p[0].is_string() ? p[0] : Value(std::string());
  if (!(given(p[0]) && p[0].is_string())) {
    const int64_t w = as_int_arg(p[0], 4, "indent width");
    if (w < 0 || w > 256) throw Error(fmt::format("indent width {} outside [0, 256]", w));
    ind = Value(std::string(static_cast<size_t>(w), ' '));
  }
  const bool first = given(p[1]) && p[1].truthy(), blank = given(p[2]) && p[2].truthy();
  TextBuilder text;
  text.append(as_text(in));
  text.append_text("\n");
  const Value src = text.take();
  const std::vector<ByteRange> lines = split_lines(src.as_string());
  TextBuilder out;
  if (first) out.append(ind);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) out.append_text("\n");
    if (i && (blank || lines[i].end > lines[i].begin)) out.append(ind);
    out.append_part(src, lines[i].begin, lines[i].end);
    check_size(out.size(), limits);
  }
  return out.take();
}

Value f_wordcount(const Value& in, CallArgs& a, const L&) {
  bind_args(a, "wordcount", {});
  int64_t n = 0;
  bool in_word = false;
  for (char c : to_str(in)) {
    const bool w = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                   (static_cast<unsigned char>(c) >= 0x80);
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value(n);
}

const std::unordered_map<std::string, FilterFn>& filters() {
  static const std::unordered_map<std::string, FilterFn> table = {
      {"abs", f_abs},           {"capitalize", f_capitalize}, {"count", f_length},   {"d", f_default},
      {"default", f_default},   {"dictsort", f_dictsort},     {"e", f_escape},       {"escape", f_escape},
      {"first", f_first},       {"float", f_float},           {"indent", f_indent},  {"int", f_int},
      {"items", f_items},       {"join", f_join},             {"last", f_last},      {"length", f_length},
      {"list", f_list},         {"lower", f_lower},           {"map", f_map},        {"max", f_max},
      {"min", f_min},           {"reject", f_reject},         {"rejectattr", f_rejectattr},
      {"replace", f_replace},   {"reverse", f_reverse},       {"round", f_round},    {"safe", f_safe},
      {"select", f_select},     {"selectattr", f_selectattr}, {"sort", f_sort},      {"string", f_string},
      {"sum", f_sum},           {"title", f_title},           {"tojson", f_tojson},  {"trim", f_trim},
      {"unique", f_unique},     {"upper", f_upper},           {"wordcount", f_wordcount},
  };
  return table;
}

// ---- tests --------------------------------------------------------------------------------------

Value one_arg(CallArgs& a, const char* name) {
  const auto p = bind_args(a, name, {"other"});
  if (!given(p[0])) throw Error(fmt::format("test '{}' needs an argument", name));
  return p[0];
}
void no_args(CallArgs& a, const char* name) { bind_args(a, name, {}); }

bool t_defined(const Value& v, CallArgs& a) { return no_args(a, "defined"), !v.is_undefined(); }
bool t_undefined(const Value& v, CallArgs& a) { return no_args(a, "undefined"), v.is_undefined(); }
bool t_none(const Value& v, CallArgs& a) { return no_args(a, "none"), v.is_none(); }
bool t_boolean(const Value& v, CallArgs& a) { return no_args(a, "boolean"), v.is_bool(); }
bool t_true(const Value& v, CallArgs& a) { return no_args(a, "true"), v.is_bool() && v.as_bool(); }
bool t_false(const Value& v, CallArgs& a) { return no_args(a, "false"), v.is_bool() && !v.as_bool(); }
bool t_integer(const Value& v, CallArgs& a) { return no_args(a, "integer"), v.type() == Value::Type::Int; }
bool t_float(const Value& v, CallArgs& a) { return no_args(a, "float"), v.type() == Value::Type::Float; }
bool t_number(const Value& v, CallArgs& a) { return no_args(a, "number"), v.is_number(); }
bool t_string(const Value& v, CallArgs& a) { return no_args(a, "string"), v.is_string(); }
bool t_mapping(const Value& v, CallArgs& a) { return no_args(a, "mapping"), v.is_dict() && !v.as_dict().is_namespace; }
bool t_callable(const Value& v, CallArgs& a) { return no_args(a, "callable"), v.is_function(); }
bool t_iterable(const Value& v, CallArgs& a) {
  no_args(a, "iterable");
  return v.is_undefined() || v.is_string() || v.is_list() || (v.is_dict() && !v.as_dict().is_namespace);
}
bool t_sequence(const Value& v, CallArgs& a) {
  no_args(a, "sequence");
  return v.is_string() || v.is_list() || (v.is_dict() && !v.as_dict().is_namespace);
}
bool t_eq(const Value& v, CallArgs& a) { return equals(v, one_arg(a, "eq")); }
bool t_ne(const Value& v, CallArgs& a) { return !equals(v, one_arg(a, "ne")); }
bool t_lt(const Value& v, CallArgs& a) { return less(v, one_arg(a, "lt")); }
bool t_gt(const Value& v, CallArgs& a) { return less(one_arg(a, "gt"), v); }
bool t_le(const Value& v, CallArgs& a) { return !less(one_arg(a, "le"), v); }
bool t_ge(const Value& v, CallArgs& a) { return !less(v, one_arg(a, "ge")); }
bool t_in(const Value& v, CallArgs& a) {
  const Value seq = one_arg(a, "in");
  if (seq.is_string() && v.is_string()) return seq.as_string().find(v.as_string()) != std::string::npos;
  for (const Value& x : iterate(seq))
    if (equals(x, v)) return true;
  return false;
}
bool t_sameas(const Value& v, CallArgs& a) {
  const Value o = one_arg(a, "sameas");
  if (v.type() != o.type()) return false;
  if (v.is_list()) return &v.as_list() == &o.as_list();
  if (v.is_dict()) return &v.as_dict() == &o.as_dict();
  return equals(v, o);
}
int64_t int_of(const Value& v, const char* test) {
  if (!v.is_int()) throw Error(fmt::format("test '{}' needs an integer, not {}", test, v.type_name()));
  return v.as_int();
}
bool t_odd(const Value& v, CallArgs& a) { return no_args(a, "odd"), int_of(v, "odd") % 2 != 0; }
bool t_even(const Value& v, CallArgs& a) { return no_args(a, "even"), int_of(v, "even") % 2 == 0; }
bool t_divisibleby(const Value& v, CallArgs& a) {
  const int64_t d = int_of(one_arg(a, "divisibleby"), "divisibleby");
  if (d == 0) throw Error("integer division or modulo by zero");
  return d == -1 || int_of(v, "divisibleby") % d == 0;
}
// str(v).islower() / isupper(): no cased character of the other case, and at least one cased one.
bool t_lower(const Value& v, CallArgs& a) {
  no_args(a, "lower");
  const std::string s = to_str(v);
  return str_lower(s) == s && str_upper(s) != s;
}
bool t_upper(const Value& v, CallArgs& a) {
  no_args(a, "upper");
  const std::string s = to_str(v);
  return str_upper(s) == s && str_lower(s) != s;
}

const std::unordered_map<std::string, TestFn>& tests() {
  static const std::unordered_map<std::string, TestFn> table = {
      {"defined", t_defined}, {"undefined", t_undefined}, {"none", t_none},       {"boolean", t_boolean},
      {"true", t_true},       {"false", t_false},         {"integer", t_integer}, {"float", t_float},
      {"number", t_number},   {"string", t_string},       {"mapping", t_mapping}, {"callable", t_callable},
      {"iterable", t_iterable}, {"sequence", t_sequence}, {"eq", t_eq},           {"equalto", t_eq},
      {"==", t_eq},           {"ne", t_ne},               {"!=", t_ne},           {"lt", t_lt},
      {"lessthan", t_lt},     {"<", t_lt},                {"gt", t_gt},           {"greaterthan", t_gt},
      {">", t_gt},            {"le", t_le},               {"<=", t_le},           {"ge", t_ge},
      {">=", t_ge},           {"in", t_in},               {"sameas", t_sameas},   {"odd", t_odd},
      {"even", t_even},       {"divisibleby", t_divisibleby}, {"lower", t_lower}, {"upper", t_upper},
  };
  return table;
}

}  // namespace

bool is_known_filter(const std::string& name) { return filters().count(name) != 0; }
bool is_known_test(const std::string& name) { return tests().count(name) != 0; }

Value call_filter(const std::string& name, const Value& input, CallArgs& args, const ChatTemplateLimits& limits) {
  const auto it = filters().find(name);
  if (it == filters().end()) throw Error(fmt::format("no filter named '{}'", name));
  // An undefined input works where jinja2's filter only prints or iterates it (str(), iter(), len()
  // of Undefined succeed); every other filter fails on it, as in jinja2.
  static const char* const kAcceptUndefined[] = {
      "default", "d",     "length", "count",  "string", "trim", "list",      "first",   "last",
      "join",    "items", "upper",  "lower",  "capitalize", "title", "safe", "e",       "escape",
      "replace", "wordcount", "sort", "sum",  "unique", "map",  "select",    "reject",  "selectattr",
      "rejectattr", "min", "max"};
  if (input.is_undefined() && !input.undefined_hint().empty() &&
      std::find(std::begin(kAcceptUndefined), std::end(kAcceptUndefined), name) == std::end(kAcceptUndefined))
    fail_undefined(input);
  // Every filter above keeps taint (jinja_value.h) itself. A filter added without doing so must
  // still not launder caller data: its string result is untrusted as a whole when any input was.
  static const char* const kKeepsTaint[] = {
      "abs",   "capitalize", "count", "d",     "default",   "dictsort", "e",      "escape",  "first",  "float",
      "indent", "int",       "items", "join",  "last",      "length",   "list",   "lower",   "map",    "max",
      "min",   "reject",     "rejectattr", "replace", "reverse", "round", "safe",  "select",  "selectattr",
      "sort",  "string",     "sum",   "title", "tojson",    "trim",     "unique", "upper",   "wordcount"};
  Value out = it->second(input, args, limits);
  if (out.is_string() && !out.taint() &&
      std::find(std::begin(kKeepsTaint), std::end(kKeepsTaint), name) == std::end(kKeepsTaint)) {
    bool tainted = deep_tainted(input);
    for (const Value& v : args.args) tainted = tainted || deep_tainted(v);
    for (const auto& kv : args.kwargs) tainted = tainted || deep_tainted(kv.second);
    if (tainted) out = Value::untrusted(out.as_string());
  }
  return out;
}

bool call_test(const std::string& name, const Value& v, CallArgs& args) {
  const auto it = tests().find(name);
  if (it == tests().end()) throw Error(fmt::format("no test named '{}'", name));
  return it->second(v, args);
}

}  // namespace contrail::jinja
