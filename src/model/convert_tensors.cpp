// Tensor side of the GGUF conversion: llama.cpp's storage-type rules, its Q/K row permutation and
// the element conversions (f16 / bf16 rounding to nearest even, GGML's reference q8_0).
#include <fmt/format.h>

#include <cstring>
#include <string_view>

#include "contrail/core/error.h"
#include "contrail/core/half.h"
#include "contrail/kernels/quantize.h"
#include "contrail/model/convert.h"
#include "model/convert_detail.h"

namespace contrail {

DType gguf_tensor_dtype(std::string_view name, const std::vector<int64_t>& shape, ConvertType outtype) {
  // convert_hf_to_gguf.py prepare_tensors: 1-D tensors and norms stay f32 ("most of the codebase
  // that takes in 1D tensors or norms only handles F32"), so do position embeddings and anything
  // that is not a ".weight".
  if (shape.size() <= 1 || name.ends_with("_norm.weight") || !name.ends_with(".weight") ||
      name == "position_embd.weight")
    return DType::F32;
  switch (outtype) {
    case ConvertType::F32: return DType::F32;
    case ConvertType::F16: return DType::F16;
    case ConvertType::BF16: return DType::BF16;
    case ConvertType::Q8_0:
      // gguf.quants.quantize raises QuantError for rows that are not whole blocks; the converter
      // then falls back to f16.
      return shape.back() % kQ8_0Block == 0 ? DType::Q8_0 : DType::F16;
  }
  throw InvalidArgument(fmt::format("gguf_tensor_dtype: unknown output type {}", static_cast<int>(outtype)));
}

namespace detail {
namespace {

// Which permutation a tensor needs: none, or per-head rows of `head_dim` reordered between the
// two rotary layouts.
struct RowPermutation {
  int64_t head_dim = 0;            // 0: identity
  bool halves_to_pairs = true;     // HF rotate-halves -> GGUF adjacent pairs, else the inverse
};

// Source unit (row, or element of a 1-D tensor) of output unit u under p. Within each head of
// hd rows: pairs row 2i + s <-> halves row s * hd/2 + i (llama.cpp's
// reshape(n_head, 2, hd/2, ...).swapaxes(1, 2)).
int64_t source_unit(int64_t u, const RowPermutation& p) {
  if (p.head_dim == 0) return u;
  const int64_t hd = p.head_dim, half = hd / 2, head = u / hd, j = u % hd;
  if (p.halves_to_pairs) return head * hd + (j % 2) * half + j / 2;  // j = 2i + s -> s*half + i
  return head * hd + 2 * (j % half) + j / half;                      // j = s*half + i -> 2i + s
}

RowPermutation permutation_for(const std::string& name, const Tensor& src, const ModelConfig& c,
                               ops::RopeMode target) {
  if (c.rope.mode == target) return {};
  const bool q = name.ends_with(".attn_q.weight") || name.ends_with(".attn_q.bias");
  const bool k = name.ends_with(".attn_k.weight") || name.ends_with(".attn_k.bias");
  if (name.ends_with(".attn_qkv.weight") || name.ends_with(".attn_qkv.bias"))
    throw InvalidArgument(fmt::format("convert: tensor '{}': a fused QKV projection cannot be permuted to the {} "
                                      "rotary layout",
                                      name, target == ops::RopeMode::Normal ? "adjacent-pairs" : "rotate-halves"));
  if (!q && !k) return {};
  if (c.rope.n_rot != c.head_dim)
    throw InvalidArgument(fmt::format("convert: tensor '{}': partial rotary (n_rot {} of head_dim {}) cannot be "
                                      "permuted between rotary layouts",
                                      name, c.rope.n_rot, c.head_dim));
  const int64_t heads = q ? c.n_head : c.n_head_kv;
  if (src.dim(0) != heads * c.head_dim)
    throw InvalidArgument(fmt::format("convert: tensor '{}' has {} rows, expected {} heads x head_dim {}", name,
                                      src.dim(0), heads, c.head_dim));
  return {c.head_dim, c.rope.mode == ops::RopeMode::Neox};
}

bool storable(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::Q8_0; }

// n f32 values -> dst dtype at y.
void encode(const float* x, int64_t n, DType dst, void* y) {
  switch (dst) {
    case DType::F32: std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float)); return;
    case DType::F16: {
      auto* out = static_cast<uint16_t*>(y);
      for (int64_t i = 0; i < n; ++i) out[i] = f32_to_f16(x[i]);
      return;
    }
    case DType::BF16: {
      auto* out = static_cast<uint16_t*>(y);
      for (int64_t i = 0; i < n; ++i) out[i] = f32_to_bf16(x[i]);
      return;
    }
    case DType::Q8_0: kernels::quantize_row_q8_0(x, n, static_cast<BlockQ8_0*>(y)); return;
    default: break;
  }
  throw InvalidArgument(fmt::format("convert: cannot store {}", dtype_name(dst)));  // excluded by storable()
}

}  // namespace

std::vector<uint8_t> convert_tensor(const std::string& name, const Tensor& src, DType dst, const ModelConfig& c,
                                    ops::RopeMode target_rope) {
  if (!kernels::can_dequantize(src.dtype()))
    throw InvalidArgument(fmt::format("convert: tensor '{}' has dtype {}, which cannot be converted (supported "
                                      "sources: f32, f16, bf16, q8_0)",
                                      name, dtype_name(src.dtype())));
  if (!storable(dst))
    throw InvalidArgument(fmt::format("convert: tensor '{}': output dtype {} is not supported (supported: f32, f16, "
                                      "bf16, q8_0)",
                                      name, dtype_name(dst)));
  if (src.ndim() < 1 || !src.data())
    throw InvalidArgument(fmt::format("convert: tensor '{}' is empty", name));
  const RowPermutation perm = permutation_for(name, src, c, target_rope);
  // Units are rows, except that a permuted 1-D tensor (a bias) is permuted element by element.
  const int64_t unit = src.ndim() == 1 && perm.head_dim != 0 ? 1 : src.cols();
  const int64_t n_units = src.numel() / unit;
  if (dtype_traits(src.dtype()).block_size > 1 && unit % dtype_traits(src.dtype()).block_size != 0)
    throw InvalidArgument(fmt::format("convert: tensor '{}' {} {} cannot be permuted element-wise", name,
                                      dtype_name(src.dtype()), src.shape_str()));
  if (unit % dtype_traits(dst).block_size != 0)
    throw InvalidArgument(fmt::format("convert: tensor '{}' {}: rows of {} elements are not a multiple of the {} "
                                      "block size {}",
                                      name, src.shape_str(), unit, dtype_name(dst), dtype_traits(dst).block_size));
  const size_t src_unit_bytes = row_bytes(src.dtype(), unit), dst_unit_bytes = row_bytes(dst, unit);

  std::vector<uint8_t> out(dst_unit_bytes * static_cast<size_t>(n_units));  // the GGUF tensor data
  std::vector<float> scratch(src.dtype() == DType::F32 ? 0 : static_cast<size_t>(unit));  // (unit) f32
  const auto* base = static_cast<const uint8_t*>(src.data());
  for (int64_t u = 0; u < n_units; ++u) {
    const uint8_t* from = base + static_cast<size_t>(source_unit(u, perm)) * src_unit_bytes;
    uint8_t* to = out.data() + static_cast<size_t>(u) * dst_unit_bytes;
    if (src.dtype() == dst) {  // same storage: exact copy
      std::memcpy(to, from, dst_unit_bytes);
    } else if (src.dtype() == DType::F32) {
      encode(reinterpret_cast<const float*>(from), unit, dst, to);
    } else {
      kernels::dequantize_row(src.dtype(), from, unit, scratch.data());
      encode(scratch.data(), unit, dst, to);
    }
  }
  return out;
}

}  // namespace detail
}  // namespace contrail
