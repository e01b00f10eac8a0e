// AVX-512 loads of q8_0 data shared by matmul_avx512.cpp and matmul_avx512vnni.cpp: two 32-value
// blocks per 512-bit vector, with their scales spread to match. Include only from translation units
// compiled with the AVX-512 flags. Everything here has internal linkage (anonymous namespace), so
// each ISA file gets its own copy and no inline function crosses ISA boundaries (ODR).
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "contrail/core/dtype.h"

namespace contrail::kernels {
namespace {

// Quantized values of blocks b, b+1 of one row (upper half zero when !two).
__m512i load_w_pair(const BlockQ8_0* blk, bool two) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[0].qs));
  const __m256i hi = two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[1].qs)) : _mm256_setzero_si256();
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// Spreads two f32 scales over lanes [0, 8) and [8, 16).
__m512 spread_pair(__m128 d01) {
  const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(d01));
}

// The f16 scales of blocks b, b+1 (second 0 when !two), spread as spread_pair().
__m512 load_w_scales(const BlockQ8_0* blk, bool two) {
  const uint32_t bits = uint32_t{blk[0].d} | (two ? uint32_t{blk[1].d} << 16 : 0u);
  return spread_pair(_mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(bits))));
}

__m512i load_x_pair(const int8_t* p, bool two) {
  return two ? _mm512_loadu_si512(p) : _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

__m512 load_x_scales(const float* d, bool two) {
  return spread_pair(two ? _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(d))) : _mm_load_ss(d));
}

}  // namespace
}  // namespace contrail::kernels
