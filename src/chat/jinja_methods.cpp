// Attribute/item access, slicing, iteration, ordering, the methods of str and dict that chat
// templates call, and the global functions (HF's raise_exception and strftime_now, Jinja's
// range, namespace and dict).
#include <fmt/format.h>

#include <algorithm>
#include <ctime>

#include "chat/jinja_builtins.h"
#include "contrail/core/error.h"

namespace contrail::jinja {

void check_size(size_t n, const ChatTemplateLimits& limits) {
  if (n > limits.max_output_bytes)
    throw Error(fmt::format("a value of {} bytes/items exceeds the limit of {}", n, limits.max_output_bytes));
}

void fail_undefined(const Value& v) {
  throw Error(v.undefined_hint().empty() ? "undefined value" : v.undefined_hint());
}

std::vector<Value> bind_args(const CallArgs& a, const char* fname, std::initializer_list<const char*> params) {
  if (a.args.size() > params.size())
    throw Error(fmt::format("{}() takes at most {} arguments ({} given)", fname, params.size(), a.args.size()));
  std::vector<Value> out(params.size());
  for (size_t i = 0; i < a.args.size(); ++i) out[i] = a.args[i];
  for (const auto& [key, v] : a.kwargs) {
    const auto it = std::find_if(params.begin(), params.end(), [&](const char* p) { return key == p; });
    if (it == params.end()) throw Error(fmt::format("{}() got an unexpected keyword argument '{}'", fname, key));
    out[static_cast<size_t>(it - params.begin())] = v;
  }
  return out;
}

namespace {

std::string object_name(const Value& v) {
  return v.is_none() ? "None" : fmt::format("'{} object'", v.type_name());
}

int64_t to_index(const Value& v, const char* what) {
  if (v.is_int()) return v.as_int();
  if (v.is_none() || (v.is_undefined() && v.undefined_hint().empty())) return INT64_MIN;
  throw Error(fmt::format("{} must be an integer, not {}", what, v.type_name()));
}

const std::string& need_string(const Value& v, const char* fname) {
  if (!v.is_string()) throw Error(fmt::format("{}() argument must be str, not {}", fname, v.type_name()));
  return v.as_string();
}

// str.split: the byte range of each part.
std::vector<ByteRange> split(const std::string& s, const Value& sep_v, int64_t maxsplit) {
  std::vector<ByteRange> out;
  if (!given(sep_v) || sep_v.is_none()) {  // runs of whitespace, no empty items
    const std::string ws = " \t\n\r\f\v";
    size_t i = s.find_first_not_of(ws);
    while (i != std::string::npos) {
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
        const auto [b, e] = str_strip_bounds(std::string_view(s).substr(i), nullptr, false, true);
        out.push_back({i + b, i + e});
        break;
      }
      const size_t e = s.find_first_of(ws, i);
      out.push_back({i, e == std::string::npos ? s.size() : e});
      i = e == std::string::npos ? e : s.find_first_not_of(ws, e);
    }
    return out;
  }
  const std::string& sep = need_string(sep_v, "split");
  if (sep.empty()) throw Error("empty separator");
  size_t i = 0;
  for (;;) {
    const size_t e = s.find(sep, i);
    if (e == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit)) {
      out.push_back({i, s.size()});
      return out;
    }
    out.push_back({i, e});
    i = e + sep.size();
  }
}

bool affix_match(const std::string& s, const Value& affix, bool prefix, const char* fname) {
  auto one = [&](const Value& a) {
    const std::string& x = need_string(a, fname);
    return x.size() <= s.size() && (prefix ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0);
  };
  if (affix.is_list()) return std::any_of(affix.as_list().begin(), affix.as_list().end(), one);
  return one(affix);
}

// str.replace; the kept bytes keep their taint, each inserted copy carries `to`'s.
Value replace_all(const Value& sv, const Value& from_v, const Value& to, int64_t count, const ChatTemplateLimits& limits) {
  const std::string& s = sv.as_string();
  const std::string& from = from_v.as_string();
  if (from.empty()) throw Error("replace() with an empty search string is not supported");
  TextBuilder out;
  size_t i = 0;
  for (int64_t n = 0; count < 0 || n < count; ++n) {
    const size_t e = s.find(from, i);
    if (e == std::string::npos) break;
    out.append_part(sv, i, e);
    out.append(to);
    check_size(out.size(), limits);
    i = e + from.size();
  }
  out.append_part(sv, i, s.size());
  return out.take();
}

// The methods of a str value; results keep the taint of the bytes they are made of.
Value str_method(const Value& str, const std::string& name, const ChatTemplateLimits& limits) {
  auto bound = [&](auto fn) {
    return make_function("str." + name, [str, name, fn, &limits](CallArgs& a) -> Value { return fn(str, a, name, limits); });
  };
  using A = CallArgs;
  using L = ChatTemplateLimits;
  using S = std::string;
  using V = Value;
  if (name == "strip" || name == "lstrip" || name == "rstrip")
    return bound([](const V& sv, A& a, const S& n, const L&) -> Value {
      const auto p = bind_args(a, n.c_str(), {"chars"});
      const bool has = given(p[0]) && !p[0].is_none();
      const S* chars = has ? &need_string(p[0], n.c_str()) : nullptr;
      const auto [b, e] = str_strip_bounds(sv.as_string(), chars, n != "rstrip", n != "lstrip");
      return substr(sv, b, e);
    });
  if (name == "startswith" || name == "endswith")
    return bound([](const V& sv, A& a, const S& n, const L&) -> Value {
      const auto p = bind_args(a, n.c_str(), {"affix"});
      return Value(affix_match(sv.as_string(), p[0], n == "startswith", n.c_str()));
    });
  if (name == "split")
    return bound([](const V& sv, A& a, const S&, const L&) -> Value {
      const auto p = bind_args(a, "split", {"sep", "maxsplit"});
      List out;
      for (const ByteRange& r : split(sv.as_string(), p[0], given(p[1]) ? to_index(p[1], "maxsplit") : -1))
        out.push_back(substr(sv, r.begin, r.end));
      return Value(std::move(out));
    });
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize")
    return bound([](const V& sv, A& a, const S& n, const L&) -> Value {
      bind_args(a, n.c_str(), {});
      const S& s = sv.as_string();
      return taint_whole_if(n == "upper"   ? str_upper(s)
                            : n == "lower" ? str_lower(s)
                            : n == "title" ? str_title(s)
                                           : str_capitalize(s),
                            {&sv});
    });
  if (name == "replace")
    return bound([](const V& sv, A& a, const S&, const L& limits) -> Value {
      const auto p = bind_args(a, "replace", {"old", "new", "count"});
      need_string(p[0], "replace");
      need_string(p[1], "replace");
      return replace_all(sv, p[0], p[1], given(p[2]) ? to_index(p[2], "count") : -1, limits);
    });
  if (name == "find" || name == "count")
    return bound([](const V& sv, A& a, const S& n, const L&) -> Value {
      const auto p = bind_args(a, n.c_str(), {"sub"});
      const S& s = sv.as_string();
      const S& sub = need_string(p[0], n.c_str());
      if (n == "find") {
        const size_t at = s.find(sub);
        return Value(at == S::npos ? int64_t{-1} : static_cast<int64_t>(codepoint_count(std::string_view(s).substr(0, at))));
      }
      if (sub.empty()) return Value(static_cast<int64_t>(codepoint_count(s) + 1));
      int64_t c = 0;
      for (size_t i = s.find(sub); i != S::npos; i = s.find(sub, i + sub.size())) ++c;
      return Value(c);
    });
  if (name == "join")
    return bound([](const V& sv, A& a, const S&, const L& limits) -> Value {
      const auto p = bind_args(a, "join", {"iterable"});
      TextBuilder out;
      bool first = true;
      for (const Value& v : iterate(p[0])) {
        if (!first) out.append(sv);
        need_string(v, "join");
        out.append(v);
        check_size(out.size(), limits);
        first = false;
      }
      return out.take();
    });
  if (name == "isdigit" || name == "isalpha" || name == "isspace" || name == "isalnum")
    return bound([](const V& sv, A& a, const S& n, const L&) -> Value {
      bind_args(a, n.c_str(), {});
      const S& s = sv.as_string();
      if (s.empty()) return Value(false);
      return Value(std::all_of(s.begin(), s.end(), [&](char c) {
        const auto u = static_cast<unsigned char>(c);
        if (n == "isdigit") return u >= '0' && u <= '9';
        if (n == "isspace") return u == ' ' || (u >= '\t' && u <= '\r');
        const bool alpha = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z');
        return n == "isalpha" ? alpha : alpha || (u >= '0' && u <= '9');
      }));
    });
  return Value();
}

Value dict_method(const std::shared_ptr<Dict>& d, const std::string& name) {
  if (name == "items" || name == "keys" || name == "values")
    return make_function("dict." + name, [d, name](CallArgs& a) -> Value {
      bind_args(a, name.c_str(), {});
      List out;
      for (const auto& [k, v] : d->items)
        out.push_back(name == "items" ? make_tuple(List{key_value(*d, k), v}) : name == "keys" ? key_value(*d, k) : v);
      return Value(std::move(out));
    });
  if (name == "get")
    return make_function("dict.get", [d](CallArgs& a) -> Value {
      const auto p = bind_args(a, "get", {"key", "default"});
      const Value* v = p[0].is_string() ? d->find(p[0].as_string()) : nullptr;
      return v ? *v : given(p[1]) ? p[1] : Value::none();
    });
  return Value();
}

}  // namespace

Value get_attr(const Value& obj, const std::string& name, const ChatTemplateLimits& limits) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (obj.is_dict()) {
    if (!obj.as_dict().is_namespace) {
      Value m = dict_method(obj.dict_ptr(), name);
      if (!m.is_undefined()) return m;
    }
    if (const Value* v = obj.as_dict().find(name)) return *v;
  } else if (obj.is_string()) {
    Value m = str_method(obj, name, limits);
    if (!m.is_undefined()) return m;
  }
  return Value::undefined(fmt::format("{} has no attribute '{}'", object_name(obj), name));
}

Value get_item(const Value& obj, const Value& key, const ChatTemplateLimits& limits) {
  if (obj.is_undefined()) fail_undefined(obj);
  if ((obj.is_list() || obj.is_string()) && key.is_int()) {
    int64_t i = key.as_int();
    if (obj.is_list()) {
      const int64_t n = static_cast<int64_t>(obj.as_list().size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return obj.as_list()[static_cast<size_t>(i)];
    } else {
      const auto offs = codepoint_offsets(obj.as_string());
      const int64_t n = static_cast<int64_t>(offs.size()) - 1;
      if (i < 0) i += n;
      if (i >= 0 && i < n) return substr(obj, offs[static_cast<size_t>(i)], offs[static_cast<size_t>(i) + 1]);
    }
    return Value::undefined(fmt::format("{} has no element {}", object_name(obj), key.as_int()));
  }
  if (obj.is_dict() && key.is_string()) {
    if (const Value* v = obj.as_dict().find(key.as_string())) return *v;
  }
  if (key.is_string()) return get_attr(obj, key.as_string(), limits);
  return Value::undefined(fmt::format("{} has no element {}", object_name(obj), repr(key)));
}

Value slice(const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (!obj.is_list() && !obj.is_string()) throw Error(fmt::format("'{}' object is not subscriptable", obj.type_name()));
  std::vector<size_t> offs;
  int64_t n = 0;
  if (obj.is_list()) {
    n = static_cast<int64_t>(obj.as_list().size());
  } else {
    offs = codepoint_offsets(obj.as_string());
    n = static_cast<int64_t>(offs.size()) - 1;
  }
  int64_t step = to_index(step_v, "slice step");
  if (step == INT64_MIN) step = 1;
  if (step == 0) throw Error("slice step cannot be zero");
  // Python's PySlice_AdjustIndices.
  auto adjust = [&](const Value& v, int64_t dflt) {
    int64_t i = to_index(v, "slice index");
    if (i == INT64_MIN) return dflt;
    if (i < 0) {
      i += n;
      if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= n) {
      i = step < 0 ? n - 1 : n;
    }
    return i;
  };
  const int64_t start = adjust(start_v, step < 0 ? n - 1 : 0);
  const int64_t stop = adjust(stop_v, step < 0 ? -1 : n);
  List items;
  TextBuilder s;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    const auto u = static_cast<size_t>(i);
    if (obj.is_list()) items.push_back(obj.as_list()[u]);
    else s.append_part(obj, offs[u], offs[u + 1]);
  }
  items.tuple = obj.is_list() && obj.as_list().tuple;
  return obj.is_list() ? Value(std::move(items)) : s.take();
}

List iterate(const Value& v) {
  switch (v.type()) {
    case Value::Type::Undefined: return {};
    case Value::Type::List: {
      List items = v.as_list();
      items.tuple = false;
      return items;
    }
    case Value::Type::Dict: {
      if (v.as_dict().is_namespace) break;
      List keys;
      for (const auto& kv : v.as_dict().items) keys.push_back(key_value(v.as_dict(), kv.first));
      return keys;
    }
    case Value::Type::String: {
      List chars;
      const auto offs = codepoint_offsets(v.as_string());
      for (size_t i = 0; i + 1 < offs.size(); ++i) chars.push_back(substr(v, offs[i], offs[i + 1]));
      return chars;
    }
    default: break;
  }
  throw Error(fmt::format("'{}' object is not iterable", v.type_name()));
}

namespace {

bool less_at(const Value& a, const Value& b, int depth) {
  if (depth > kMaxValueDepth) throw Error(fmt::format("value nested deeper than the limit of {} levels", kMaxValueDepth));
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (a.is_number() && b.is_number()) {
    if (a.type() != Value::Type::Float && b.type() != Value::Type::Float) return a.as_int() < b.as_int();
    return a.as_float() < b.as_float();
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();  // UTF-8 order = code point order
  if (a.is_list() && b.is_list()) {
    const List &x = a.as_list(), &y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i)
      if (!equals(x[i], y[i])) return less_at(x[i], y[i], depth + 1);
    return x.size() < y.size();
  }
  throw Error(fmt::format("'<' not supported between instances of '{}' and '{}'", a.type_name(), b.type_name()));
}

}  // namespace

bool less(const Value& a, const Value& b) { return less_at(a, b, 0); }

Value global_function(const std::string& name, const ChatTemplateLimits& limits) {
  if (name == "raise_exception")
    return make_function(name, [](CallArgs& a) -> Value {
      const auto p = bind_args(a, "raise_exception", {"message"});
      throw TemplateException(to_str(p[0]));
    });
  if (name == "range")
    return make_function(name, [&limits](CallArgs& a) -> Value {
      const auto p = bind_args(a, "range", {"start", "stop", "step"});
      int64_t start = 0, stop = 0, step = 1;
      if (!given(p[0])) throw Error("range expected at least 1 argument, got 0");
      if (!given(p[1])) {
        stop = to_index(p[0], "range() argument");
      } else {
        start = to_index(p[0], "range() argument");
        stop = to_index(p[1], "range() argument");
        if (given(p[2])) step = to_index(p[2], "range() argument");
      }
      if (step == 0) throw Error("range() arg 3 must not be zero");
      const double count = step > 0 ? (static_cast<double>(stop) - start) / step : (static_cast<double>(start) - stop) / -step;
      if (count > 0) check_size(static_cast<size_t>(count), limits);
      List out;
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.emplace_back(i);
      return Value(std::move(out));
    });
  if (name == "namespace" || name == "dict")
    return make_function(name, [name](CallArgs& a) -> Value {
      auto d = std::make_shared<Dict>();
      d->is_namespace = name == "namespace";
      if (a.args.size() > 1) throw Error(fmt::format("{}() takes at most 1 positional argument", name));
      if (!a.args.empty()) {
        if (!a.args[0].is_dict()) throw Error(fmt::format("{}() positional argument must be a dict", name));
        for (const auto& kv : a.args[0].as_dict().items) d->set(kv.first, kv.second);
        d->untrusted_keys = a.args[0].as_dict().untrusted_keys;
      }
      for (const auto& [k, v] : a.kwargs) d->set(k, v);
      return Value(std::move(d));
    });
  if (name == "strftime_now")
    return make_function(name, [](CallArgs& a) -> Value {
      const auto p = bind_args(a, "strftime_now", {"format"});
      const std::string& f = need_string(p[0], "strftime_now");
      const std::time_t now = std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);
      char buf[512];
      const size_t n = std::strftime(buf, sizeof(buf), f.c_str(), &tm);
      if (n == 0 && !f.empty()) throw Error(fmt::format("strftime_now: format '{}' is empty or too long", f));
      return Value(std::string(buf, n));
    });
  return Value();
}

}  // namespace contrail::jinja
