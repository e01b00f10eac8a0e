// Internal helpers shared by the GGUF reader, writer and GgufValue: classification and encoded
// sizes of the metadata value types. Not part of the public API.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "contrail/model/gguf.h"

namespace contrail::detail {

inline bool gguf_is_unsigned(GgufType t) {
  return t == GgufType::UINT8 || t == GgufType::UINT16 || t == GgufType::UINT32 || t == GgufType::UINT64;
}
inline bool gguf_is_signed(GgufType t) {
  return t == GgufType::INT8 || t == GgufType::INT16 || t == GgufType::INT32 || t == GgufType::INT64;
}
inline bool gguf_is_integer(GgufType t) { return gguf_is_unsigned(t) || gguf_is_signed(t); }
inline bool gguf_is_float(GgufType t) { return t == GgufType::FLOAT32 || t == GgufType::FLOAT64; }
inline bool gguf_valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::FLOAT64); }

// Encoded size of one element of a fixed-size type; 0 for STRING and ARRAY.
inline size_t gguf_fixed_size(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
    case GgufType::UINT16: case GgufType::INT16: return 2;
    case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
    case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
    case GgufType::STRING: case GgufType::ARRAY: return 0;
  }
  return 0;
}

// Printable form of untrusted bytes: control characters, quote and backslash escaped; bytes
// >= 0x80 pass through so UTF-8 text stays readable.
std::string gguf_escape_bytes(const uint8_t* p, size_t n);

}  // namespace contrail::detail
