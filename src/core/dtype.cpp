#include "contrail/core/dtype.h"

#include <fmt/format.h>

#include <array>
#include <limits>

#include "contrail/core/error.h"

namespace contrail {
namespace {

struct Entry {
  uint32_t id;
  DTypeTraits traits;
};

// Sizes follow GGML's block layouts (ggml-common.h); QK_K = 256.
constexpr std::array<Entry, 20> kTable{{
    {0, {"f32", 1, 4, false}},      {1, {"f16", 1, 2, false}},      {2, {"q4_0", 32, 18, true}},
    {3, {"q4_1", 32, 20, true}},    {6, {"q5_0", 32, 22, true}},    {7, {"q5_1", 32, 24, true}},
    {8, {"q8_0", 32, 34, true}},    {9, {"q8_1", 32, 36, true}},    {10, {"q2_K", 256, 84, true}},
    {11, {"q3_K", 256, 110, true}}, {12, {"q4_K", 256, 144, true}}, {13, {"q5_K", 256, 176, true}},
    {14, {"q6_K", 256, 210, true}}, {15, {"q8_K", 256, 292, true}}, {24, {"i8", 1, 1, false}},
    {25, {"i16", 1, 2, false}},     {26, {"i32", 1, 4, false}},     {27, {"i64", 1, 8, false}},
    {28, {"f64", 1, 8, false}},     {30, {"bf16", 1, 2, false}},
}};

}  // namespace

const DTypeTraits* dtype_traits_or_null(uint32_t id) {
  for (const auto& e : kTable)
    if (e.id == id) return &e.traits;
  return nullptr;
}

const DTypeTraits& dtype_traits(DType t) {
  const DTypeTraits* tr = dtype_traits_or_null(static_cast<uint32_t>(t));
  if (!tr) throw InvalidArgument(fmt::format("unknown dtype id {}", static_cast<uint32_t>(t)));
  return *tr;
}

std::string_view dtype_name(DType t) {
  const DTypeTraits* tr = dtype_traits_or_null(static_cast<uint32_t>(t));
  return tr ? tr->name : std::string_view("unknown");
}

size_t row_bytes(DType t, int64_t n) {
  const DTypeTraits& tr = dtype_traits(t);
  if (n < 0 || n % tr.block_size != 0)
    throw InvalidArgument(fmt::format("row of {} elements is not a multiple of the {} block size {}", n,
                                      tr.name, tr.block_size));
  const uint64_t blocks = static_cast<uint64_t>(n / tr.block_size);
  if (blocks > std::numeric_limits<size_t>::max() / tr.type_size)
    throw InvalidArgument(fmt::format("row of {} {} elements overflows size_t", n, tr.name));
  return blocks * tr.type_size;
}

}  // namespace contrail
