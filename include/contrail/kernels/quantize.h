// Scalar conversions between f32 and the weight storage dtypes f16, bf16 and q8_0. These are the
// reference versions (plain C++): SIMD code that converts or dequantizes is tested against them.
//
// Numerics:
// - f16 / bf16 -> f32 is exact (contrail/core/half.h).
// - q8_0 -> f32: value = f32(d) * q, exact up to that single product's rounding.
// - quantize_row_q8_0 follows GGML's reference quantizer (quantize_row_q8_0_ref, what
//   llama-quantize uses for weights): per block of 32, amax = max |x|, d = amax / 127,
//   q = roundf(x * (1 / d)) (half away from zero; 0 when d == 0), d stored as f16.
//   (Activation quantization inside matmul uses ggml-cpu's x86 variant instead; see
//   contrail/kernels/matmul.h.)
// No function here validates its pointers: x and y hold at least n elements (n / 32 blocks).
#pragma once
#include <cstdint>

#include "contrail/core/dtype.h"

namespace contrail::kernels {

// x: (n) f32 -> y: (n / 32) blocks. n % 32 == 0.
void quantize_row_q8_0(const float* x, int64_t n, BlockQ8_0* y);

// x: (n) f16 bits -> y: (n) f32.
void dequantize_row_f16(const uint16_t* x, int64_t n, float* y);
// x: (n) bf16 bits -> y: (n) f32.
void dequantize_row_bf16(const uint16_t* x, int64_t n, float* y);
// x: (n / 32) blocks -> y: (n) f32. n % 32 == 0.
void dequantize_row_q8_0(const BlockQ8_0* x, int64_t n, float* y);

// Whether dequantize_row supports t (f32, f16, bf16, q8_0).
bool can_dequantize(DType t);
// One row of n elements of dtype t (a row of row_bytes(t, n) bytes at x) -> y: (n) f32.
// Throws InvalidArgument naming the dtype when !can_dequantize(t).
void dequantize_row(DType t, const void* x, int64_t n, float* y);

}  // namespace contrail::kernels
