// GgufValue: compact array storage (the file's encoding) with converting accessors and checked
// builders, and the display form used by `contrail info`.
#include <fmt/format.h>

#include <cstring>
#include <limits>

#include "contrail/core/error.h"
#include "contrail/model/gguf.h"
#include "model/gguf_detail.h"

namespace contrail {

using detail::gguf_fixed_size;
using detail::gguf_is_float;
using detail::gguf_is_integer;

namespace detail {

std::string gguf_escape_bytes(const uint8_t* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    if (p[i] >= 0x20 && p[i] != 0x7f && p[i] != '\\' && p[i] != '"')
      s += static_cast<char>(p[i]);
    else
      s += fmt::format("\\x{:02x}", p[i]);
  }
  return s;
}

}  // namespace detail

namespace {

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <typename T>
void append(std::vector<uint8_t>& out, T v) {
  uint8_t b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.insert(out.end(), b, b + sizeof(T));
}

std::string type_of(const GgufValue& v) {
  return v.type == GgufType::ARRAY ? fmt::format("array of {}", gguf_type_name(v.elem_type))
                                   : std::string(gguf_type_name(v.type));
}

// Throws unless v is an array whose element type satisfies ok().
void check_array(const GgufValue& v, bool ok, const char* accessor) {
  if (v.type != GgufType::ARRAY || !ok)
    throw InvalidArgument(fmt::format("GgufValue::{}: the value is {}", accessor, type_of(v)));
}

// Throws unless v is an array whose element type satisfies ok() and i < array_size().
void check_element(const GgufValue& v, size_t i, bool ok, const char* accessor) {
  check_array(v, ok, accessor);
  if (i >= v.array_size())
    throw InvalidArgument(fmt::format("GgufValue::{}: index {} is out of range (array of {} elements)", accessor, i,
                                      v.array_size()));
}

// Inclusive range of an integer element type (BOOL: 0..1), within int64 (UINT64: 0..INT64_MAX,
// what int_at can return).
std::pair<int64_t, int64_t> int_range(GgufType t) {
  switch (t) {
    case GgufType::UINT8: return {0, 0xff};
    case GgufType::INT8: return {-128, 127};
    case GgufType::UINT16: return {0, 0xffff};
    case GgufType::INT16: return {-32768, 32767};
    case GgufType::UINT32: return {0, 0xffffffffll};
    case GgufType::INT32: return {std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()};
    case GgufType::UINT64: return {0, std::numeric_limits<int64_t>::max()};
    case GgufType::INT64: return {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()};
    default: return {0, 1};  // BOOL
  }
}

}  // namespace

size_t GgufValue::array_size() const {
  if (type != GgufType::ARRAY) return 0;
  if (elem_type == GgufType::STRING) return string_ends.size();
  const size_t es = gguf_fixed_size(elem_type);
  return es ? array_bytes.size() / es : 0;
}

size_t GgufValue::array_payload_bytes() const {
  return array_bytes.capacity() + string_ends.capacity() * sizeof(uint64_t);
}

int64_t GgufValue::int_at(size_t i) const {
  check_element(*this, i, gguf_is_integer(elem_type) || elem_type == GgufType::BOOL, "int_at");
  const uint8_t* p = array_bytes.data() + i * gguf_fixed_size(elem_type);
  switch (elem_type) {
    case GgufType::UINT8: case GgufType::BOOL: return *p;
    case GgufType::INT8: return static_cast<int8_t>(*p);
    case GgufType::UINT16: return load<uint16_t>(p);
    case GgufType::INT16: return load<int16_t>(p);
    case GgufType::UINT32: return load<uint32_t>(p);
    case GgufType::INT32: return load<int32_t>(p);
    case GgufType::INT64: return load<int64_t>(p);
    case GgufType::UINT64: {
      const uint64_t u = load<uint64_t>(p);
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw InvalidArgument(fmt::format("GgufValue::int_at: element {} = {} exceeds the supported maximum {}", i, u,
                                          std::numeric_limits<int64_t>::max()));
      return static_cast<int64_t>(u);
    }
    default: break;
  }
  throw InvalidArgument(fmt::format("GgufValue::int_at: the value is {}", type_of(*this)));
}

double GgufValue::float_at(size_t i) const {
  check_element(*this, i, gguf_is_float(elem_type), "float_at");
  const uint8_t* p = array_bytes.data() + i * gguf_fixed_size(elem_type);
  return elem_type == GgufType::FLOAT32 ? static_cast<double>(load<float>(p)) : load<double>(p);
}

std::string_view GgufValue::string_at(size_t i) const {
  check_element(*this, i, elem_type == GgufType::STRING, "string_at");
  const uint64_t begin = i == 0 ? 0 : string_ends[i - 1], end = string_ends[i];
  if (begin > end || end > array_bytes.size())
    throw InvalidArgument(fmt::format("GgufValue::string_at: string {} spans [{}, {}) outside the {} bytes held", i,
                                      begin, end, array_bytes.size()));
  return std::string_view(reinterpret_cast<const char*>(array_bytes.data()) + begin, static_cast<size_t>(end - begin));
}

std::vector<int64_t> GgufValue::ints() const {
  check_array(*this, gguf_is_integer(elem_type) || elem_type == GgufType::BOOL, "ints");
  std::vector<int64_t> out(array_size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = int_at(i);
  return out;
}

std::vector<double> GgufValue::floats() const {
  check_array(*this, gguf_is_float(elem_type), "floats");
  std::vector<double> out(array_size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = float_at(i);
  return out;
}

std::vector<std::string> GgufValue::strings() const {
  check_array(*this, elem_type == GgufType::STRING, "strings");
  std::vector<std::string> out;
  out.reserve(array_size());
  for (size_t i = 0; i < array_size(); ++i) out.emplace_back(string_at(i));
  return out;
}

GgufValue GgufValue::int_array(GgufType elem, const std::vector<int64_t>& values) {
  if (!gguf_is_integer(elem) && elem != GgufType::BOOL)
    throw InvalidArgument(fmt::format("GgufValue::int_array: element type {} is not an integer scalar type or bool",
                                      gguf_type_name(elem)));
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem_type = elem;
  const auto [lo, hi] = int_range(elem);
  v.array_bytes.reserve(values.size() * gguf_fixed_size(elem));
  for (size_t i = 0; i < values.size(); ++i) {
    const int64_t x = values[i];
    if (x < lo || x > hi)
      throw InvalidArgument(fmt::format("GgufValue::int_array: value {} at index {} does not fit in {} ([{}, {}])", x,
                                        i, gguf_type_name(elem), lo, hi));
    switch (gguf_fixed_size(elem)) {
      case 1: append(v.array_bytes, static_cast<uint8_t>(x)); break;
      case 2: append(v.array_bytes, static_cast<uint16_t>(x)); break;
      case 4: append(v.array_bytes, static_cast<uint32_t>(x)); break;
      default: append(v.array_bytes, static_cast<uint64_t>(x)); break;
    }
  }
  return v;
}

GgufValue GgufValue::float_array(GgufType elem, const std::vector<double>& values) {
  if (!gguf_is_float(elem))
    throw InvalidArgument(fmt::format("GgufValue::float_array: element type {} is not f32 or f64",
                                      gguf_type_name(elem)));
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem_type = elem;
  v.array_bytes.reserve(values.size() * gguf_fixed_size(elem));
  for (double x : values) {
    if (elem == GgufType::FLOAT32)
      append(v.array_bytes, static_cast<float>(x));
    else
      append(v.array_bytes, x);
  }
  return v;
}

GgufValue GgufValue::string_array(const std::vector<std::string>& values) {
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem_type = GgufType::STRING;
  size_t total = 0;
  for (const std::string& s : values) total += s.size();
  v.array_bytes.reserve(total);
  v.string_ends.reserve(values.size());
  for (const std::string& s : values) {
    v.array_bytes.insert(v.array_bytes.end(), s.begin(), s.end());
    v.string_ends.push_back(v.array_bytes.size());
  }
  return v;
}

std::string GgufValue::to_display(size_t max_items) const {
  const auto quote = [](std::string_view s) {
    return fmt::format("\"{}\"", detail::gguf_escape_bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  };
  if (type != GgufType::ARRAY) {
    if (const auto* u = std::get_if<uint64_t>(&scalar)) return fmt::format("{}", *u);
    if (const auto* i = std::get_if<int64_t>(&scalar)) return fmt::format("{}", *i);
    if (const auto* d = std::get_if<double>(&scalar)) return fmt::format("{}", *d);
    if (const auto* b = std::get_if<bool>(&scalar)) return *b ? "true" : "false";
    if (const auto* s = std::get_if<std::string>(&scalar)) return quote(*s);
    return "(none)";
  }
  const size_t n = array_size();
  std::string out = "[";
  for (size_t i = 0; i < n && i < max_items; ++i) {
    if (i) out += ", ";
    if (elem_type == GgufType::STRING)
      out += quote(string_at(i));
    else if (gguf_is_float(elem_type))
      out += fmt::format("{}", float_at(i));
    else if (elem_type == GgufType::BOOL)
      out += int_at(i) ? "true" : "false";
    else
      out += fmt::format("{}", int_at(i));
  }
  if (n > max_items) out += ", ...";
  return out + fmt::format("] ({} x {})", n, gguf_type_name(elem_type));
}

}  // namespace contrail
