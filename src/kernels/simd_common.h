// The members of the vector traits (kernels/simd_avx2.h, kernels/simd_avx512.h) whose intrinsics are
// spelt alike in every ISA but for the prefix (_mm256_add_ps, _mm512_add_ps, ...), written once.
// Used inside a traits struct: P is the intrinsics' prefix, VEC the f32 vector type (V), DVEC the
// f64 vector type (D), LANES the floats per vector (kW). The macro generates those and inline static
// members only.
#pragma once

#define CONTRAIL_SIMD_PREFIXED_OPS(P, VEC, DVEC, LANES)                     \
  using V = VEC;                                                           \
  using D = DVEC;                                                          \
  static constexpr int64_t kW = LANES;                                     \
  static V load(const float* p) { return P##_loadu_ps(p); }                \
  static void store(float* p, V v) { P##_storeu_ps(p, v); }                \
  static V set1(float x) { return P##_set1_ps(x); }                        \
  static V zero() { return P##_setzero_ps(); }                             \
  static V add(V a, V b) { return P##_add_ps(a, b); }                      \
  static V sub(V a, V b) { return P##_sub_ps(a, b); }                      \
  static V mul(V a, V b) { return P##_mul_ps(a, b); }                      \
  static V div(V a, V b) { return P##_div_ps(a, b); }                      \
  static V fmadd(V a, V b, V c) { return P##_fmadd_ps(a, b, c); }          \
  static V fmsub(V a, V b, V c) { return P##_fmsub_ps(a, b, c); }          \
  static V fnmadd(V a, V b, V c) { return P##_fnmadd_ps(a, b, c); }        \
  static V min(V a, V b) { return P##_min_ps(a, b); }                      \
  static V max(V a, V b) { return P##_max_ps(a, b); }                      \
  static D zero_d() { return P##_setzero_pd(); }                           \
  static D add_d(D a, D b) { return P##_add_pd(a, b); }
