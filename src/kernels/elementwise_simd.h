// The elementwise kernels written once for any vector traits S (kernels/simd_avx2.h,
// kernels/simd_avx512.h): elementwise_avx2.cpp and elementwise_avx512.cpp instantiate them into
// their ISA's kernel table. Formulas and tolerances: contrail/kernels/elementwise.h.
//
// Every loop runs whole vectors, then one masked vector for the row's tail (lanes past n are
// neither read nor written). ODR: everything lives in the anonymous namespace (each ISA's
// translation unit gets its own instantiations); include the traits header first.
#pragma once
#include <cstdint>

#include "contrail/kernels/elementwise.h"

namespace contrail::kernels {
namespace {

// y[i] = f(x[i]) for i < n, f: V -> V. y may alias x.
template <class S, class F>
void map1(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + S::kW <= n; i += S::kW) S::store(y + i, f(S::load(x + i)));
  if (i < n) {
    const typename S::M m = S::tail(n - i);
    S::store_tail(y + i, m, f(S::load_tail(x + i, m)));
  }
}

// out[i] = f(a[i], b[i]) for i < n, f: (V, V) -> V. out may alias a or b.
template <class S, class F>
void map2(const float* a, const float* b, float* out, int64_t n, F f) {
  int64_t i = 0;
  for (; i + S::kW <= n; i += S::kW) S::store(out + i, f(S::load(a + i), S::load(b + i)));
  if (i < n) {
    const typename S::M m = S::tail(n - i);
    S::store_tail(out + i, m, f(S::load_tail(a + i, m), S::load_tail(b + i, m)));
  }
}

// exp(x): n = round(x / ln2), r = x - n ln2 (Cody-Waite, two constants), exp(r) by the Cephes
// expf polynomial, times 2^n (S::scale_pow2). |error| <= 1 ulp in the normal range.
template <class S>
typename S::V exp_v(typename S::V x) {
  // Beyond these bounds exp is +inf / rounds to 0 anyway; clamping keeps n in [-150, 128].
  // max(lo, x) / min(hi, .) return x when x is NaN, so NaN propagates.
  x = S::min(S::set1(88.8f), S::max(S::set1(-104.0f), x));
  const typename S::V n = S::round(S::mul(x, S::set1(1.44269504088896341f)));
  typename S::V r = S::fnmadd(n, S::set1(0.693359375f), x);
  r = S::fnmadd(n, S::set1(-2.12194440e-4f), r);
  typename S::V p = S::set1(1.9875691500e-4f);
  p = S::fmadd(p, r, S::set1(1.3981999507e-3f));
  p = S::fmadd(p, r, S::set1(8.3334519073e-3f));
  p = S::fmadd(p, r, S::set1(4.1665795894e-2f));
  p = S::fmadd(p, r, S::set1(1.6666665459e-1f));
  p = S::fmadd(p, r, S::set1(5.0000001201e-1f));
  p = S::add(S::fmadd(p, S::mul(r, r), r), S::set1(1.0f));
  return S::scale_pow2(p, n);
}

// silu(g) * u = g / (1 + exp(-g)) * u
template <class S>
typename S::V swiglu_v(typename S::V g, typename S::V u) {
  const typename S::V e = exp_v<S>(S::sub(S::zero(), g));
  return S::mul(S::div(g, S::add(S::set1(1.0f), e)), u);
}

// gelu(x) = 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)), u = sqrt(2/pi) x (1 + 0.044715 x^2). The
// sigmoid form has no cancellation for u << 0; exp's clamping gives gelu(+big) = x, gelu(-big) = -0.
template <class S>
typename S::V gelu_v(typename S::V x) {
  const typename S::V inner = S::mul(x, S::fmadd(S::mul(S::set1(0.044715f), x), x, S::set1(1.0f)));
  const typename S::V e = exp_v<S>(S::mul(inner, S::set1(-2.0f * 0.79788456080286535587989211986876f)));
  return S::div(x, S::add(S::set1(1.0f), e));
}

// tanh(t): with a = |t|, the Cephes tanhf odd polynomial a + a^3 P(a^2) for a < 0.625, else
// 1 - 2 / (exp(2a) + 1); then the sign of t. Within 2 ulp of tanhf; tanh(+-inf) = +-1, NaN stays NaN.
template <class S>
typename S::V tanh_v(typename S::V t) {
  const typename S::V a = S::abs(t);
  const typename S::V z = S::mul(a, a);
  typename S::V p = S::set1(-5.70498872745e-3f);
  p = S::fmadd(p, z, S::set1(2.06390887954e-2f));
  p = S::fmadd(p, z, S::set1(-5.37397155531e-2f));
  p = S::fmadd(p, z, S::set1(1.33314422036e-1f));
  p = S::fmadd(p, z, S::set1(-3.33332819422e-1f));
  const typename S::V small = S::fmadd(S::mul(p, z), a, a);
  const typename S::V e = exp_v<S>(S::add(a, a));
  const typename S::V large = S::sub(S::set1(1.0f), S::div(S::set1(2.0f), S::add(e, S::set1(1.0f))));
  return S::copy_sign(S::select_lt(a, S::set1(0.625f), small, large), t);
}

// out[i] = f(a[i], b[i], c[i]) for i < n. out may alias a, b or c.
template <class S, class F>
void map3(const float* a, const float* b, const float* c, float* out, int64_t n, F f) {
  int64_t i = 0;
  for (; i + S::kW <= n; i += S::kW) S::store(out + i, f(S::load(a + i), S::load(b + i), S::load(c + i)));
  if (i < n) {
    const typename S::M m = S::tail(n - i);
    S::store_tail(out + i, m, f(S::load_tail(a + i, m), S::load_tail(b + i, m), S::load_tail(c + i, m)));
  }
}

// 1 / sqrt(x), rounded like the scalar 1.0f / sqrtf(x).
inline float inv_sqrt(float x) { return 1.0f / _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(x))); }

// The sum of f(x[i]) in double, two accumulators over pairs of vectors; the tail is a masked load
// (lanes past n read as 0), so f must map 0 to 0.
template <class S, class F>
double sum_widened(const float* x, int64_t n, F f) {
  typename S::D acc0 = S::zero_d(), acc1 = S::zero_d();
  int64_t i = 0;
  for (; i + 2 * S::kW <= n; i += 2 * S::kW) {
    acc0 = S::add_widened(acc0, f(S::load(x + i)));
    acc1 = S::add_widened(acc1, f(S::load(x + i + S::kW)));
  }
  for (; i < n; i += S::kW) acc0 = S::add_widened(acc0, f(S::load_tail(x + i, S::tail(n - i))));
  return S::hsum_d(S::add_d(acc0, acc1));
}

// y[i] = f(x[i]), and the sum of g(y[i]) in double (the low and high halves of each vector in two
// accumulators); the tail's lanes past n are 0 before g, so g must map 0 to 0. y may alias x.
template <class S, class F, class G>
double map_and_sum(const float* x, float* y, int64_t n, F f, G g) {
  typename S::D acc0 = S::zero_d(), acc1 = S::zero_d();
  int64_t i = 0;
  for (; i + S::kW <= n; i += S::kW) {
    const typename S::V v = f(S::load(x + i));
    S::store(y + i, v);
    S::add_halves(acc0, acc1, g(v));
  }
  if (i < n) {
    const typename S::M m = S::tail(n - i);
    const typename S::V v = S::zero_past(m, f(S::load_tail(x + i, m)));
    S::store_tail(y + i, m, v);
    acc0 = S::add_widened(acc0, g(v));
  }
  return S::hsum_d(S::add_d(acc0, acc1));
}

template <class S>
void rmsnorm_row(const float* x, const float* w, int64_t n, float eps, float* y) {
  using V = typename S::V;
  const double sum = sum_widened<S>(x, n, [](V v) { return S::mul(v, v); });
  const V s = S::set1(inv_sqrt(static_cast<float>(sum / static_cast<double>(n)) + eps));
  map2<S>(x, w, y, n, [&](V xv, V wv) { return S::mul(S::mul(xv, s), wv); });
}

template <class S>
void layernorm_row(const float* x, const float* w, const float* b, int64_t n, float eps, float* y) {
  using V = typename S::V;
  const float mean = static_cast<float>(sum_widened<S>(x, n, [](V v) { return v; })) / static_cast<float>(n);
  // y = x - mean; the sum of the f32 squares in double.
  const V vmean = S::set1(mean);
  const double sum2 = map_and_sum<S>(x, y, n, [&](V v) { return S::sub(v, vmean); }, [](V d) { return S::mul(d, d); });
  const V s = S::set1(inv_sqrt(static_cast<float>(sum2 / static_cast<double>(n)) + eps));
  // y = ((y * s) * w) + b, unfused like ggml_norm, ggml_mul, ggml_add.
  map3<S>(y, w, b, y, n, [&](V yv, V wv, V bv) { return S::add(S::mul(S::mul(yv, s), wv), bv); });
}

template <class S>
void softmax_row(float* x, int64_t n) {
  using V = typename S::V;
  const V ninf = S::set1(-__builtin_inff());
  V vmax = ninf;
  int64_t i = 0;
  for (; i + S::kW <= n; i += S::kW) vmax = S::max(vmax, S::load(x + i));
  if (i < n) vmax = S::max(vmax, S::load_tail_or(x + i, S::tail(n - i), ninf));
  const float max = S::hmax(vmax);
  if (max == -__builtin_inff()) {  // all -inf: no admissible entry
    for (i = 0; i < n; ++i) x[i] = 0.0f;
    return;
  }
  const V vm = S::set1(max);
  const double sum = map_and_sum<S>(x, x, n, [&](V v) { return exp_v<S>(S::sub(v, vm)); }, [](V e) { return e; });
  const V inv = S::set1(static_cast<float>(1.0 / sum));
  map1<S>(x, x, n, [&](V v) { return S::mul(v, inv); });
}

template <class S>
void exp_row(const float* x, float* y, int64_t n) {
  map1<S>(x, y, n, exp_v<S>);
}

template <class S>
void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  map2<S>(gate, up, out, n, swiglu_v<S>);
}

template <class S>
void gelu(const float* x, float* y, int64_t n) {
  map1<S>(x, y, n, gelu_v<S>);
}

template <class S>
void geglu(const float* gate, const float* up, float* out, int64_t n) {
  map2<S>(gate, up, out, n, [](typename S::V g, typename S::V u) { return S::mul(gelu_v<S>(g), u); });
}

template <class S>
void softcap(const float* x, float* y, int64_t n, float cap) {
  const typename S::V vcap = S::set1(cap), inv = S::set1(1.0f / cap);
  map1<S>(x, y, n, [&](typename S::V v) { return S::mul(tanh_v<S>(S::mul(v, inv)), vcap); });
}

template <class S>
void scale(const float* x, float* y, int64_t n, float s) {
  const typename S::V vs = S::set1(s);
  map1<S>(x, y, n, [&](typename S::V v) { return S::mul(v, vs); });
}

template <class S>
void add_inplace(float* y, const float* x, int64_t n) {
  map2<S>(y, x, y, n, [](typename S::V a, typename S::V b) { return S::add(a, b); });
}

// Rotates pairs [i, half) of one row in scalar code, fused like the vector path:
// x0' = fma(x0, cos, -x1 sin), x1' = fma(x0, sin, x1 cos).
inline void rope_pairs_tail(float* row, int64_t i, int64_t half, int64_t stride, int64_t offset, const float* cos,
                            const float* sin) {
  for (; i < half; ++i) {
    float* a = row + i * stride;
    const float x0 = a[0], x1 = a[offset];
    a[0] = __builtin_fmaf(x0, cos[i], -(x1 * sin[i]));
    a[offset] = __builtin_fmaf(x0, sin[i], x1 * cos[i]);
  }
}

template <class S>
void rope_rows(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, bool neox, const float* cos_sin) {
  const int64_t half = n_rot / 2;
  const float* cos = cos_sin;         // (half)
  const float* sin = cos_sin + half;  // (half)
  for (int64_t h = 0; h < n_heads; ++h) {
    float* row = x + h * head_dim;  // (head_dim)
    int64_t i = 0;
    if (neox) {
      // Pair i is (row[i], row[i + half]): kW pairs per step, straight loads.
      for (; i + S::kW <= half; i += S::kW) {
        const typename S::V c = S::load(cos + i), s = S::load(sin + i);
        const typename S::V x0 = S::load(row + i), x1 = S::load(row + half + i);
        S::store(row + i, S::fmsub(x0, c, S::mul(x1, s)));
        S::store(row + half + i, S::fmadd(x0, s, S::mul(x1, c)));
      }
      rope_pairs_tail(row, i, half, 1, half, cos, sin);
    } else {
      // Pair i is (row[2i], row[2i+1]): kW / 2 pairs per vector.
      for (; i + S::kW / 2 <= half; i += S::kW / 2) S::rope_adjacent_pairs(row + 2 * i, cos + i, sin + i);
      rope_pairs_tail(row, i, half, 2, 1, cos, sin);
    }
  }
}

// The kernel table of the ISA of S.
template <class S>
constexpr ElementwiseKernels elementwise_table() {
  return {rmsnorm_row<S>, softmax_row<S>, exp_row<S>,   swiglu<S>,   add_inplace<S>, rope_rows<S>,
          layernorm_row<S>, gelu<S>,      geglu<S>,     softcap<S>,  scale<S>};
}

}  // namespace
}  // namespace contrail::kernels
