// Element types. The numeric values are GGML's type ids, so a GGUF tensor's type maps directly.
// Block-quantized types store `block_size` elements in `type_size` bytes; a row of n elements
// must have n % block_size == 0.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace contrail {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

struct DTypeTraits {
  std::string_view name;  // "f32", "q8_0", ...
  int64_t block_size;     // elements per block (1 for plain types)
  size_t type_size;       // bytes per block
  bool quantized;
};

// Returns nullptr for an id that is not a known type (e.g. a hostile GGUF type field).
const DTypeTraits* dtype_traits_or_null(uint32_t id);
// Throws InvalidArgument for unknown ids.
const DTypeTraits& dtype_traits(DType t);
std::string_view dtype_name(DType t);
// Bytes of a row of n elements; throws InvalidArgument if n is not a multiple of the block size
// or the byte count overflows.
size_t row_bytes(DType t, int64_t n);

// Q8_0: 32 int8 values sharing one f16 scale (GGML block_q8_0). value = d * qs[i].
inline constexpr int64_t kQ8_0Block = 32;
struct BlockQ8_0 {
  uint16_t d;  // f16 bits
  int8_t qs[kQ8_0Block];
};
static_assert(sizeof(BlockQ8_0) == 34);

}  // namespace contrail
