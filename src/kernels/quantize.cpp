// Scalar reference conversions between f32 and f16 / bf16 / q8_0 (see contrail/kernels/quantize.h).
#include "contrail/kernels/quantize.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "contrail/core/error.h"
#include "contrail/core/half.h"

namespace contrail::kernels {

void quantize_row_q8_0(const float* x, int64_t n, BlockQ8_0* y) {
  for (int64_t b = 0; b < n / kQ8_0Block; ++b) {
    const float* xb = x + b * kQ8_0Block;  // (32)
    float amax = 0.0f;
    for (int64_t j = 0; j < kQ8_0Block; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = f32_to_f16(d);
    for (int64_t j = 0; j < kQ8_0Block; ++j) {
      const float q = std::round(xb[j] * id);  // |q| <= 127 for finite x; NaN (non-finite x) -> 0
      y[b].qs[j] = q == q ? static_cast<int8_t>(q) : 0;
    }
  }
}

void dequantize_row_f16(const uint16_t* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = f16_to_f32(x[i]);
}

void dequantize_row_bf16(const uint16_t* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_f32(x[i]);
}

void dequantize_row_q8_0(const BlockQ8_0* x, int64_t n, float* y) {
  for (int64_t b = 0; b < n / kQ8_0Block; ++b) {
    const float d = f16_to_f32(x[b].d);
    for (int64_t j = 0; j < kQ8_0Block; ++j) y[b * kQ8_0Block + j] = d * static_cast<float>(x[b].qs[j]);
  }
}

bool can_dequantize(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::Q8_0;
}

void dequantize_row(DType t, const void* x, int64_t n, float* y) {
  switch (t) {
    case DType::F32: std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float)); return;
    case DType::F16: dequantize_row_f16(static_cast<const uint16_t*>(x), n, y); return;
    case DType::BF16: dequantize_row_bf16(static_cast<const uint16_t*>(x), n, y); return;
    case DType::Q8_0: dequantize_row_q8_0(static_cast<const BlockQ8_0*>(x), n, y); return;
    default: break;
  }
  throw InvalidArgument(
      fmt::format("dequantize_row: dtype {} is not supported (expected f32, f16, bf16 or q8_0)", dtype_name(t)));
}

}  // namespace contrail::kernels
