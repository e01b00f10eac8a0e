// Values of the Jinja interpreter, with Python semantics: None, bool, int (64-bit), float, str
// (UTF-8; lengths and indices count code points), list and tuple, dict (insertion
// ordered, string keys), namespace (a dict whose attributes `set` may assign), callables
// (built-in functions, bound methods, macros) and Jinja's Undefined.
// Lists and dicts have reference semantics (shared_ptr), as in Python.
//
// Taint: a string remembers which of its bytes came from the caller's data (message contents,
// roles, tools: "untrusted") as byte ranges, and every operation that builds a string carries
// them over (concatenation, slicing, strip, replace, join, ... map them precisely; operations
// that cannot, such as upper or tojson, mark their whole result untrusted when any input was).
// A dict built from caller data has untrusted keys. Numbers, booleans and None carry no taint.
// The rendered prompt keeps the ranges, so the tokenizer can treat untrusted text as plain text.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace contrail::jinja {

class Value;
struct Dict;

// Bytes [begin, end) of a string.
struct ByteRange {
  size_t begin = 0, end = 0;
};
// The untrusted parts of a string: sorted, disjoint, non-empty ranges; touching ranges are merged.
using Taint = std::vector<ByteRange>;

// Nesting deeper than this (lists, dicts, namespaces) makes repr, tojson, comparisons and the JSON
// context conversion throw Error, as Python's recursion limit makes jinja2 fail.
constexpr int kMaxValueDepth = 1000;

// A list (or tuple: printed "(a, b)", never equal to a list). Destroying one releases nested
// containers iteratively, so arbitrarily deep data cannot overflow the stack.
struct List : std::vector<Value> {
  using std::vector<Value>::vector;
  List() = default;
  List(std::vector<Value> v) : std::vector<Value>(std::move(v)) {}  // NOLINT: implicit on purpose
  List(const List&) = default;
  List(List&&) noexcept = default;
  List& operator=(const List&) = default;
  List& operator=(List&&) noexcept = default;
  ~List();

  bool tuple = false;
};

// Arguments of a call: positional, then keyword (in source order).
struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
};

struct Function {
  std::string name;  // for error messages
  std::function<Value(CallArgs&)> fn;
};

// Undefined remembers why it is undefined, for the error raised when it is used.
struct Undefined {
  std::string hint;  // e.g. "'foo' is undefined", "'dict object' has no attribute 'x'"
};
struct None {};

class Value {
 public:
  enum class Type { Undefined, None, Bool, Int, Float, String, List, Dict, Function };

  Value() : v_(jinja::Undefined{}) {}
  static Value undefined(std::string hint) { return Value(Var(jinja::Undefined{std::move(hint)})); }
  static Value none() { return Value(Var(jinja::None{})); }
  Value(bool b) : v_(b) {}
  Value(int64_t i) : v_(i) {}
  Value(int i) : v_(int64_t{i}) {}
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  // A string whose bytes in `taint` (ranges within s, in Taint's normal form) are untrusted.
  Value(std::string s, Taint taint);
  // A string that is untrusted as a whole (caller data).
  static Value untrusted(std::string s);
  Value(List l) : v_(std::make_shared<List>(std::move(l))) {}
  Value(std::shared_ptr<List> l) : v_(std::move(l)) {}
  Value(std::shared_ptr<Dict> d) : v_(std::move(d)) {}
  Value(std::shared_ptr<const Function> f) : v_(std::move(f)) {}

  Type type() const { return v_.index() == kTaintedIndex ? Type::String : static_cast<Type>(v_.index()); }
  bool is_undefined() const { return type() == Type::Undefined; }
  bool is_none() const { return type() == Type::None; }
  bool is_bool() const { return type() == Type::Bool; }
  bool is_int() const { return type() == Type::Int || type() == Type::Bool; }  // Python: bool is an int
  bool is_number() const { return is_int() || type() == Type::Float; }
  bool is_string() const { return type() == Type::String; }
  bool is_list() const { return type() == Type::List; }
  bool is_dict() const { return type() == Type::Dict; }
  bool is_function() const { return type() == Type::Function; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return type() == Type::Bool ? int64_t{as_bool()} : std::get<int64_t>(v_); }
  double as_float() const { return type() == Type::Float ? std::get<double>(v_) : static_cast<double>(as_int()); }
  const std::string& as_string() const {
    const auto* t = std::get_if<std::shared_ptr<const Tainted>>(&v_);
    return t ? (*t)->s : std::get<std::string>(v_);
  }
  // The untrusted ranges of a string (non-empty); nullptr when it has none or is no string.
  const Taint* taint() const {
    const auto* t = std::get_if<std::shared_ptr<const Tainted>>(&v_);
    return t ? &(*t)->taint : nullptr;
  }
  List& as_list() const { return *std::get<std::shared_ptr<List>>(v_); }
  const std::shared_ptr<List>& list_ptr() const { return std::get<std::shared_ptr<List>>(v_); }
  Dict& as_dict() const { return *std::get<std::shared_ptr<Dict>>(v_); }
  const std::shared_ptr<Dict>& dict_ptr() const { return std::get<std::shared_ptr<Dict>>(v_); }
  const Function& as_function() const { return *std::get<std::shared_ptr<const Function>>(v_); }
  const std::string& undefined_hint() const { return std::get<jinja::Undefined>(v_).hint; }

  // Python truthiness; Undefined is false.
  bool truthy() const;
  // Python's type name as Jinja reports it ("str", "int", "list", "dict", "NoneType", ...).
  std::string type_name() const;

 private:
  // A string with untrusted bytes lives behind a pointer, so taint adds nothing to the size of a
  // Value (lists of untainted values cost what they did without taint tracking).
  struct Tainted {
    std::string s;
    Taint taint;  // non-empty
  };
  // Alternatives 0..8 in Type's order; kTaintedIndex is a String too.
  using Var = std::variant<jinja::Undefined, jinja::None, bool, int64_t, double, std::string, std::shared_ptr<List>,
                           std::shared_ptr<Dict>, std::shared_ptr<const Function>, std::shared_ptr<const Tainted>>;
  static constexpr size_t kTaintedIndex = 9;
  static_assert(std::is_same_v<std::variant_alternative_t<kTaintedIndex, Var>, std::shared_ptr<const Tainted>>);
  explicit Value(Var v) : v_(std::move(v)) {}
  Var v_;
};

struct Dict {
  Dict() = default;
  Dict(const Dict&) = delete;
  Dict& operator=(const Dict&) = delete;
  ~Dict();  // releases nested containers iteratively, as ~List does

  std::vector<std::pair<std::string, Value>> items;  // insertion order, unique keys
  bool is_namespace = false;                          // created by namespace(): attributes assignable
  bool untrusted_keys = false;                        // the keys came from the caller's data

  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value v);  // replaces in place or appends
};

Value make_dict(std::vector<std::pair<std::string, Value>> items = {});
// A tuple value (Python's (a, b)): dict items and tuple literals.
Value make_tuple(List items);
Value make_function(std::string name, std::function<Value(CallArgs&)> fn);

// str(v) as Jinja prints it: Undefined -> "", None -> "None", floats as Python repr, lists, tuples,
// dicts and namespaces as Python repr (a namespace inside itself prints "<Namespace {...}>").
std::string to_str(const Value& v);
// Python repr(v) (strings quoted).
std::string repr(const Value& v);
// json.dumps(v, ensure_ascii=false, indent, sort_keys) with Python's separators; indent < 0 = none.
// Throws Error for values JSON cannot hold (undefined, callables).
std::string to_json(const Value& v, int indent, bool sort_keys, std::string_view item_sep = {},
                    std::string_view key_sep = {});
// Python == (a tuple never equals a list).
bool equals(const Value& a, const Value& b);

// ---- taint ----------------------------------------------------------------------------------------

// Whether v holds untrusted data anywhere: a tainted string, or a list/dict containing one, or a
// dict with untrusted keys. Values nested too deep to inspect count as untrusted.
bool deep_tainted(const Value& v);
// A key of `d` as a value: untrusted when the dict's keys came from the caller.
Value key_value(const Dict& d, const std::string& k);
// Bytes [b, e) of string `str` as a string value, with their taint.
Value substr(const Value& str, size_t b, size_t e);
// The value as text: a string as it is; anything else as str(v), untrusted as a whole when
// deep_tainted(v).
Value as_text(const Value& v);
// `result` (a string), untrusted as a whole when any of `inputs` is deep_tainted: the rule for
// operations that cannot map byte ranges (case mapping, escaping, JSON).
Value taint_whole_if(std::string result, std::initializer_list<const Value*> inputs);

// Builds a string piece by piece, keeping the taint of each piece.
class TextBuilder {
 public:
  void append_text(std::string_view s, bool untrusted = false);
  // str(v) as printed: a string keeps its ranges, any other value is untrusted as a whole when
  // deep_tainted(v).
  void append(const Value& v);
  // Bytes [b, e) of string value `str`, keeping their taint.
  void append_part(const Value& str, size_t b, size_t e);
  size_t size() const { return text_.size(); }
  const std::string& text() const { return text_; }
  const Taint& taint() const { return taint_; }
  Value take();  // the string built; the builder is left empty

 private:
  void mark(size_t b, size_t e);  // bytes [b, e) of text_ are untrusted
  std::string text_;
  Taint taint_;
};

// UTF-8 helpers: strings index by code point. Invalid bytes count as one code point each.
std::vector<size_t> codepoint_offsets(std::string_view s);  // byte offset of each code point, plus s.size()
size_t codepoint_count(std::string_view s);
// Python str.upper/lower/title/capitalize and whitespace (str.isspace) on code points.
std::string str_upper(std::string_view s);
std::string str_lower(std::string_view s);
std::string str_title(std::string_view s);
std::string str_capitalize(std::string_view s);
// str.strip/lstrip/rstrip; chars == nullptr strips Python whitespace, else any code point in *chars.
std::string str_strip(std::string_view s, const std::string* chars, bool left, bool right);
// The byte range [first, second) of s that str_strip keeps.
std::pair<size_t, size_t> str_strip_bounds(std::string_view s, const std::string* chars, bool left, bool right);

}  // namespace contrail::jinja
