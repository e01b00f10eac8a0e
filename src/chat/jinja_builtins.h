// Built-ins of the Jinja interpreter: filters and tests (jinja_filters.cpp), attribute and item
// access, the methods of str and dict, and the global functions (jinja_methods.cpp).
// They throw contrail::Error with a message in Python's words; the evaluator prefixes the
// template line:column.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "chat/jinja_value.h"
#include "contrail/chat/chat_template.h"

namespace contrail::jinja {

// Throws Error when a string or list of `n` bytes/items would exceed the limit.
void check_size(size_t n, const ChatTemplateLimits& limits);
// Error for using an undefined value other than printing, iterating or testing it.
[[noreturn]] void fail_undefined(const Value& v);

// Binds call arguments to parameter names (Python rules: positional first, then keywords);
// absent parameters come back as plain Undefined (empty hint). Throws Error naming `fname` for
// too many positional arguments or an unknown keyword.
std::vector<Value> bind_args(const CallArgs& a, const char* fname, std::initializer_list<const char*> params);
inline bool given(const Value& v) { return !(v.is_undefined() && v.undefined_hint().empty()); }

Value call_filter(const std::string& name, const Value& input, CallArgs& args, const ChatTemplateLimits& limits);
bool call_test(const std::string& name, const Value& v, CallArgs& args);

// obj.name: str/dict methods as bound functions, dict items, namespace attributes; otherwise
// Undefined carrying Jinja's hint. Throws when obj itself is undefined.
Value get_attr(const Value& obj, const std::string& name, const ChatTemplateLimits& limits);
// obj[key]: list/str index (negative from the end), dict key, falling back to get_attr for
// string keys; out of range -> Undefined. Throws when obj is undefined.
Value get_item(const Value& obj, const Value& key, const ChatTemplateLimits& limits);
// obj[start:stop:step] with Python's slice rules, on lists and strings (by code point).
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
// The items a for loop visits: list items, dict keys, string characters; Undefined -> none.
List iterate(const Value& v);
// Python's <, for sorting and comparisons; Error for unorderable types.
bool less(const Value& a, const Value& b);

// range, namespace, dict, raise_exception, strftime_now; Undefined for other names.
Value global_function(const std::string& name, const ChatTemplateLimits& limits);

}  // namespace contrail::jinja
