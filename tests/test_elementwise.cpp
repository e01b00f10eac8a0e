// Elementwise kernels and ops: the scalar references against hand-computed values, every SIMD
// variant against the scalar reference (per ISA, directly and through the ops entries after
// set_active_isa), and argument validation.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "contrail/core/cpu_features.h"
#include "contrail/core/error.h"
#include "contrail/core/tensor.h"
#include "contrail/core/thread_pool.h"
#include "contrail/kernels/elementwise.h"
#include "contrail/ops/activation.h"
#include "contrail/ops/attention.h"
#include "contrail/ops/bias.h"
#include "contrail/ops/matmul.h"
#include "contrail/ops/norm.h"
#include "contrail/ops/rope.h"
#include "contrail/ops/softmax.h"
#include "test_util.h"

namespace contrail {
namespace {

using test::ActiveIsaGuard;
using test::expect_invalid;

using kernels::ElementwiseKernels;
using kernels::elementwise_kernels;

constexpr float kInf = std::numeric_limits<float>::infinity();
const std::vector<int64_t> kLengths = {1, 7, 33, 4097};  // awkward 1-d sizes: tails of every width
// Awkward sizes for the LayerNorm / GELU / soft-capping / scale kernels: empty, shorter than one
// vector, one short of and one past 16, two vectors and a tail, a long row.
const std::vector<int64_t> kAwkwardLengths = {0, 1, 7, 15, 17, 33, 1000};
constexpr float kEps = std::numeric_limits<float>::epsilon();  // 2^-23

std::vector<float> random_vec(size_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// |a - b| <= atol + rtol * |b| element-wise, reporting the first failure.
void expect_close(const std::vector<float>& a, const std::vector<float>& b, float atol, float rtol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_LE(std::fabs(a[i] - b[i]), atol + rtol * std::fabs(b[i])) << "at index " << i << ": " << a[i] << " vs " << b[i];
}

void expect_bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << "at index " << i;
}

Tensor tensor_from(std::vector<int64_t> shape, const std::vector<float>& values) {
  Tensor t = Tensor::empty(DType::F32, std::move(shape));
  EXPECT_EQ(static_cast<size_t>(t.numel()), values.size());
  std::memcpy(t.data(), values.data(), values.size() * sizeof(float));
  return t;
}

std::vector<float> values_of(const Tensor& t) {
  const float* p = t.data_as<float>();
  return std::vector<float>(p, p + t.numel());
}

const ElementwiseKernels& ref() { return elementwise_kernels(Isa::Scalar); }

// Distance in units in the last place between two finite floats of the same sign (or zeros).
int64_t ulp_distance(float a, float b) {
  const auto key = [](float v) {  // monotonic integer image of the float line
    const int32_t i = std::bit_cast<int32_t>(v);
    return i < 0 ? int64_t{INT32_MIN} - i : int64_t{i};
  };
  return std::abs(key(a) - key(b));
}

// ---- exp -----------------------------------------------------------------------------------------

TEST(Exp, SimdWithinTwoUlpOfExpf) {
  std::vector<float> x;  // normal-range results: x in [-87, 88.7]
  for (int i = 0; i <= 400000; ++i) x.push_back(-87.0f + 175.7f * static_cast<float>(i) / 400000.0f);
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-7f, 0.5f, -0.5f, 0.34657359f, -0.34657359f, 88.72f}) x.push_back(v);
  std::vector<float> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = std::exp(x[i]);
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    std::vector<float> got(x.size());
    elementwise_kernels(isa).exp(x.data(), got.data(), static_cast<int64_t>(x.size()));
    double worst = 0;
    for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::fabs((double)got[i] - want[i]) / want[i]);
    EXPECT_LE(worst, 2.4e-7) << "max relative error (2 ulp = 2.4e-7)";
  }
}

TEST(Exp, SimdEdgeCases) {
  const std::vector<float> x = {-kInf, -1000.0f, -104.0f, -100.0f, -95.0f, -88.0f, 88.8f, 89.0f, 1000.0f, kInf,
                                std::numeric_limits<float>::quiet_NaN()};
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    std::vector<float> got(x.size());
    elementwise_kernels(isa).exp(x.data(), got.data(), static_cast<int64_t>(x.size()));
    EXPECT_EQ(got[0], 0.0f);
    EXPECT_EQ(got[1], 0.0f);
    EXPECT_EQ(got[2], 0.0f);
    for (size_t i = 3; i <= 5; ++i)  // subnormal / smallest normal results: within 2 subnormal steps
      EXPECT_NEAR(got[i], std::exp(x[i]), 2 * std::numeric_limits<float>::denorm_min()) << "x = " << x[i];
    for (size_t i = 6; i <= 9; ++i) EXPECT_EQ(got[i], kInf) << "x = " << x[i];
    EXPECT_TRUE(std::isnan(got[10]));
  }
}

// ---- rmsnorm -------------------------------------------------------------------------------------

TEST(RmsNorm, ScalarHandComputed) {
  const std::vector<float> x = {1, 2, 3, 4}, w = {1, 1, 2, 0.5f};
  std::vector<float> y(4);
  ref().rmsnorm_row(x.data(), w.data(), 4, 0.0f, y.data());
  const double s = 1.0 / std::sqrt(30.0 / 4.0);  // mean of squares 7.5
  expect_close(y, {float(1 * s), float(2 * s), float(3 * 2 * s), float(4 * 0.5 * s)}, 0, 2e-7f);
  // eps dominates a zero row: output 0, not NaN.
  const std::vector<float> z = {0, 0, 0};
  ref().rmsnorm_row(z.data(), w.data(), 3, 1e-5f, y.data());
  EXPECT_EQ(y[0], 0.0f);
  // eps enters under the square root: x = [1], eps = 3 -> 1 / sqrt(4).
  const float one = 1.0f;
  ref().rmsnorm_row(&one, &one, 1, 3.0f, y.data());
  EXPECT_FLOAT_EQ(y[0], 0.5f);
}

TEST(RmsNorm, SimdMatchesScalar) {
  for (int64_t n : kLengths) {
    const std::vector<float> x = random_vec(n, -3, 3, 1 + n), w = random_vec(n, 0.5f, 1.5f, 2 + n);
    std::vector<float> want(n);
    ref().rmsnorm_row(x.data(), w.data(), n, 1e-6f, want.data());
    for (Isa isa : supported_isas()) {
      SCOPED_TRACE(fmt::format("{} n={}", isa_name(isa), n));
      std::vector<float> got(n);
      elementwise_kernels(isa).rmsnorm_row(x.data(), w.data(), n, 1e-6f, got.data());
      expect_close(got, want, 0, 1e-6f);
      std::vector<float> inplace = x;  // y aliasing x
      elementwise_kernels(isa).rmsnorm_row(inplace.data(), w.data(), n, 1e-6f, inplace.data());
      expect_close(inplace, want, 0, 1e-6f);
    }
  }
}

// ---- softmax -------------------------------------------------------------------------------------

TEST(Softmax, ScalarHandComputed) {
  std::vector<float> equal = {3, 3, 3, 3, 3};
  ref().softmax_row(equal.data(), 5);
  expect_close(equal, {0.2f, 0.2f, 0.2f, 0.2f, 0.2f}, 0, 1e-7f);

  std::vector<float> two = {0.0f, std::log(2.0f)};  // e^0 : e^ln2 = 1 : 2
  ref().softmax_row(two.data(), 2);
  expect_close(two, {1.0f / 3, 2.0f / 3}, 0, 1e-6f);

  std::vector<float> big = {1000.0f, 1000.0f, -kInf};  // max subtracted first: no overflow
  ref().softmax_row(big.data(), 3);
  expect_close(big, {0.5f, 0.5f, 0.0f}, 0, 0);

  std::vector<float> masked = {-kInf, -kInf, -kInf};
  ref().softmax_row(masked.data(), 3);
  expect_bitwise_equal(masked, {0, 0, 0});
}

TEST(Softmax, SimdMatchesScalar) {
  for (int64_t n : kLengths) {
    std::vector<float> x = random_vec(n, -20, 20, 10 + n);
    for (int64_t i = 3; i < n; i += 5) x[i] = -kInf;  // masked entries
    std::vector<float> want = x;
    ref().softmax_row(want.data(), n);
    for (Isa isa : supported_isas()) {
      SCOPED_TRACE(fmt::format("{} n={}", isa_name(isa), n));
      std::vector<float> got = x;
      elementwise_kernels(isa).softmax_row(got.data(), n);
      expect_close(got, want, 1e-12f, 1e-6f);
      double sum = 0;
      for (float v : got) sum += v;
      EXPECT_NEAR(sum, 1.0, 1e-5);
      std::vector<float> all_masked(n, -kInf);
      elementwise_kernels(isa).softmax_row(all_masked.data(), n);
      expect_bitwise_equal(all_masked, std::vector<float>(n, 0.0f));
    }
  }
}

// ---- swiglu / add --------------------------------------------------------------------------------

TEST(Swiglu, ScalarHandComputed) {
  const std::vector<float> g = {0.0f, 1.0f, -1.0f, -200.0f, 30.0f}, u = {5.0f, 2.0f, 1.0f, 3.0f, 0.5f};
  std::vector<float> out(5);
  ref().swiglu(g.data(), u.data(), out.data(), 5);
  const double e = std::exp(1.0);
  expect_close(out, {0.0f, float(2.0 / (1.0 + 1.0 / e)), float(-1.0 / (1.0 + e)), 0.0f, 15.0f}, 1e-30f, 1e-6f);
}

TEST(Swiglu, SimdMatchesScalar) {
  for (int64_t n : kLengths) {
    const std::vector<float> g = random_vec(n, -12, 12, 20 + n), u = random_vec(n, -2, 2, 21 + n);
    std::vector<float> want(n);
    ref().swiglu(g.data(), u.data(), want.data(), n);
    for (Isa isa : supported_isas()) {
      SCOPED_TRACE(fmt::format("{} n={}", isa_name(isa), n));
      std::vector<float> got(n);
      elementwise_kernels(isa).swiglu(g.data(), u.data(), got.data(), n);
      expect_close(got, want, 1e-30f, 1e-6f);
      std::vector<float> inplace = g;  // out aliasing gate
      elementwise_kernels(isa).swiglu(inplace.data(), u.data(), inplace.data(), n);
      expect_close(inplace, want, 1e-30f, 1e-6f);
    }
  }
}

TEST(AddInplace, ScalarHandComputedAndSimdExact) {
  std::vector<float> y = {1, 2}, x = {3, -4};
  ref().add_inplace(y.data(), x.data(), 2);
  expect_bitwise_equal(y, {4, -2});
  for (int64_t n : kLengths) {
    const std::vector<float> y0 = random_vec(n, -1, 1, 30 + n), x0 = random_vec(n, -1, 1, 31 + n);
    std::vector<float> want = y0;
    ref().add_inplace(want.data(), x0.data(), n);
    for (Isa isa : supported_isas()) {
      SCOPED_TRACE(fmt::format("{} n={}", isa_name(isa), n));
      std::vector<float> got = y0;
      elementwise_kernels(isa).add_inplace(got.data(), x0.data(), n);
      expect_bitwise_equal(got, want);
    }
  }
}

// ---- rope ----------------------------------------------------------------------------------------

TEST(Rope, CosSinTableHandComputed) {
  // n_rot 4, base 10000: theta_scale = 10000^(-1/2) = 0.01; angles at position 3: 3 and 0.03.
  std::vector<float> cs(4);
  kernels::rope_cos_sin(3.0f, 4, 10000.0f, 1.0f, cs.data());
  expect_close(cs, {float(std::cos(3.0)), float(std::cos(0.03)), float(std::sin(3.0)), float(std::sin(0.03))}, 1e-7f,
               1e-6f);
  // freq_scale 0.5 at position 6 is the same angle as position 3.
  std::vector<float> scaled(4);
  kernels::rope_cos_sin(6.0f, 4, 10000.0f, 0.5f, scaled.data());
  expect_close(scaled, cs, 1e-7f, 1e-6f);
}

TEST(Rope, ScalarHandComputedAtPositionOne) {
  // head_dim 4, n_rot 4, base 10000, position 1: pair 0 turns by 1 rad, pair 1 by 0.01 rad.
  const double c0 = std::cos(1.0), s0 = std::sin(1.0), c1 = std::cos(0.01), s1 = std::sin(0.01);
  std::vector<float> cs(4);
  kernels::rope_cos_sin(1.0f, 4, 10000.0f, 1.0f, cs.data());

  std::vector<float> normal = {1, 2, 3, 4};  // pairs (x0, x1), (x2, x3)
  ref().rope_rows(normal.data(), 1, 4, 4, false, cs.data());
  expect_close(normal, {float(1 * c0 - 2 * s0), float(1 * s0 + 2 * c0), float(3 * c1 - 4 * s1), float(3 * s1 + 4 * c1)},
               1e-6f, 1e-6f);

  std::vector<float> neox = {1, 2, 3, 4};  // pairs (x0, x2), (x1, x3)
  ref().rope_rows(neox.data(), 1, 4, 4, true, cs.data());
  expect_close(neox, {float(1 * c0 - 3 * s0), float(2 * c1 - 4 * s1), float(1 * s0 + 3 * c0), float(2 * s1 + 4 * c1)},
               1e-6f, 1e-6f);

  // Partial rotation (n_rot 2 of head_dim 4, two heads): dims 2 and 3 of each head pass through.
  std::vector<float> cs2(2);
  kernels::rope_cos_sin(1.0f, 2, 10000.0f, 1.0f, cs2.data());
  std::vector<float> partial = {1, 2, 3, 4, 5, 6, 7, 8};
  ref().rope_rows(partial.data(), 2, 4, 2, false, cs2.data());
  expect_close(partial, {float(c0 - 2 * s0), float(s0 + 2 * c0), 3, 4, float(5 * c0 - 6 * s0), float(5 * s0 + 6 * c0), 7, 8},
               1e-6f, 1e-6f);
  EXPECT_EQ(partial[2], 3.0f);
  EXPECT_EQ(partial[7], 8.0f);

  // Position 0 is the identity.
  std::vector<float> cs0(4), id = {1, 2, 3, 4};
  kernels::rope_cos_sin(0.0f, 4, 10000.0f, 1.0f, cs0.data());
  ref().rope_rows(id.data(), 1, 4, 4, true, cs0.data());
  expect_bitwise_equal(id, {1, 2, 3, 4});
}

TEST(Rope, CosSinTableWithFreqFactors) {
  // Factors of 1 change nothing; otherwise pair i's angle is freq_scale * theta_i / freq_factors[i],
  // checked in double against theta_i = pos * base^(-2i / n_rot) (the f32 recurrence of the kernel
  // drifts by ~i ulp, hence the tolerance).
  const int64_t n_rot = 64, half = n_rot / 2;
  const float pos = 1234.0f, base = 500000.0f, scale = 0.5f;
  std::vector<float> plain(n_rot), ones_table(n_rot), table(n_rot), factors(half), ones(half, 1.0f);
  for (int64_t i = 0; i < half; ++i) factors[i] = 1.0f + 7.0f * static_cast<float>(i) / half;  // 1 .. 8
  kernels::rope_cos_sin(pos, n_rot, base, scale, plain.data());
  kernels::rope_cos_sin(pos, n_rot, base, scale, ones_table.data(), ones.data());
  expect_bitwise_equal(ones_table, plain);
  kernels::rope_cos_sin(pos, n_rot, base, scale, table.data(), factors.data());
  for (int64_t i = 0; i < half; ++i) {
    const double angle = pos * scale * std::pow(double{base}, -2.0 * i / n_rot) / factors[i];
    const double tol = 1e-6 + 4 * kEps * (i + 2) * angle;
    EXPECT_NEAR(table[i], std::cos(angle), tol) << "pair " << i;
    EXPECT_NEAR(table[half + i], std::sin(angle), tol) << "pair " << i;
  }
  EXPECT_NE(table[1], plain[1]);  // the factors took effect
}

TEST(Rope, SimdMatchesScalar) {
  // The SIMD rotation fuses one product into an FMA: within ~1 ulp of the products (|x| <= 2).
  for (int64_t head_dim : {16, 32, 64, 128, 256}) {
    for (int64_t n_rot : {head_dim, head_dim / 2, int64_t{6}}) {
      for (bool neox : {false, true}) {
        const int64_t n_heads = 3;
        std::vector<float> cs(n_rot);
        kernels::rope_cos_sin(37.0f, n_rot, 10000.0f, 1.0f, cs.data());
        const std::vector<float> x = random_vec(n_heads * head_dim, -2, 2, 40 + head_dim + n_rot);
        std::vector<float> want = x;
        ref().rope_rows(want.data(), n_heads, head_dim, n_rot, neox, cs.data());
        for (Isa isa : supported_isas()) {
          SCOPED_TRACE(fmt::format("{} head_dim={} n_rot={} neox={}", isa_name(isa), head_dim, n_rot, neox));
          std::vector<float> got = x;
          elementwise_kernels(isa).rope_rows(got.data(), n_heads, head_dim, n_rot, neox, cs.data());
          expect_close(got, want, 1e-6f, 0);
          for (int64_t h = 0; h < n_heads; ++h)  // dims >= n_rot pass through untouched
            for (int64_t i = n_rot; i < head_dim; ++i) ASSERT_EQ(got[h * head_dim + i], x[h * head_dim + i]);
        }
      }
    }
  }
}

// ---- layernorm -----------------------------------------------------------------------------------

// LayerNorm of one row in double precision: the independent reference for the scalar oracle.
std::vector<double> layernorm_double(const std::vector<float>& x, const std::vector<float>& w,
                                     const std::vector<float>& b, double eps) {
  const size_t n = x.size();
  double mean = 0, var = 0;
  for (float v : x) mean += v;
  mean /= static_cast<double>(n);
  for (float v : x) var += (v - mean) * (v - mean);
  var /= static_cast<double>(n);
  std::vector<double> y(n);
  for (size_t i = 0; i < n; ++i) y[i] = (x[i] - mean) / std::sqrt(var + eps) * w[i] + b[i];
  return y;
}

TEST(LayerNorm, ScalarHandComputed) {
  // x = 1..4: mean 2.5, variance 1.25.
  const std::vector<float> x = {1, 2, 3, 4}, w = {1, 2, 1, 0.5f}, b = {0, 0, 1, -1};
  std::vector<float> y(4);
  ref().layernorm_row(x.data(), w.data(), b.data(), 4, 0.0f, y.data());
  const double s = 1.0 / std::sqrt(1.25);
  expect_close(y, {float(-1.5 * s), float(-0.5 * s * 2), float(0.5 * s + 1), float(1.5 * s * 0.5 - 1)}, 1e-7f, 2e-7f);
  // A constant row is all bias (eps keeps 0 / sqrt(eps) finite); eps enters under the square root.
  const std::vector<float> c = {7, 7, 7, 7};
  ref().layernorm_row(c.data(), w.data(), b.data(), 4, 1e-5f, y.data());
  expect_bitwise_equal(y, b);
  const std::vector<float> pm = {-1, 1}, ones = {1, 1}, zeros = {0, 0};  // variance 1, eps 3 -> 1 / 2
  ref().layernorm_row(pm.data(), ones.data(), zeros.data(), 2, 3.0f, y.data());
  EXPECT_FLOAT_EQ(y[0], -0.5f);
  EXPECT_FLOAT_EQ(y[1], 0.5f);
}

TEST(LayerNorm, ScalarMatchesDoublePrecision) {
  // Rows with a DC offset exercise the two-pass (centred) variance: the f32 error is that of x -
  // mean, a few ulp of the offset relative to the spread.
  for (int64_t n : kAwkwardLengths) {
    if (n == 0) continue;
    for (float offset : {0.0f, 40.0f}) {
      SCOPED_TRACE(fmt::format("n={} offset={}", n, offset));
      std::vector<float> x = random_vec(n, -2, 2, 100 + n);
      for (float& v : x) v += offset;
      const std::vector<float> w = random_vec(n, 0.5f, 1.5f, 101 + n), b = random_vec(n, -1, 1, 102 + n);
      std::vector<float> y(n);
      ref().layernorm_row(x.data(), w.data(), b.data(), n, 1e-5f, y.data());
      const std::vector<double> want = layernorm_double(x, w, b, 1e-5f);
      const double tol = 8 * kEps * (1 + offset);  // |w| <= 1.5, |y - b| <= sqrt(n) in normalised units
      for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(y[i], want[i], tol * (1 + std::fabs(want[i]))) << "at " << i;
    }
  }
}

TEST(LayerNorm, SimdMatchesScalar) {
  // Only the double summation order differs: the f32 mean / variance may move by an ulp.
  for (int64_t n : kAwkwardLengths) {
    if (n == 0) continue;
    std::vector<float> x = random_vec(n, -3, 3, 110 + n);
    for (float& v : x) v += 0.75f;
    const std::vector<float> w = random_vec(n, 0.5f, 1.5f, 111 + n), b = random_vec(n, -1, 1, 112 + n);
    std::vector<float> want(n);
    ref().layernorm_row(x.data(), w.data(), b.data(), n, 1e-5f, want.data());
    for (Isa isa : supported_isas()) {
      SCOPED_TRACE(fmt::format("{} n={}", isa_name(isa), n));
      std::vector<float> got(n);
      elementwise_kernels(isa).layernorm_row(x.data(), w.data(), b.data(), n, 1e-5f, got.data());
      expect_close(got, want, 1e-6f, 1e-6f);
      std::vector<float> inplace = x;  // y aliasing x
      elementwise_kernels(isa).layernorm_row(inplace.data(), w.data(), b.data(), n, 1e-5f, inplace.data());
      expect_close(inplace, want, 1e-6f, 1e-6f);
    }
  }
}

// ---- gelu / geglu --------------------------------------------------------------------------------

double gelu_double(double x) {
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
}

// The f32 GELU evaluations agree to a few ulp of max(|y|, |x| / 2): 0.5 x (1 + tanh(u)) loses the
// low bits of 1 + tanh(u) for u << 0, which scale with |x| / 2.
void expect_gelu_close(const std::vector<float>& got, const std::vector<float>& want, const std::vector<float>& x,
                       const std::vector<float>& up, float ulps) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const float u = up.empty() ? 1.0f : std::fabs(up[i]);
    ASSERT_LE(std::fabs(got[i] - want[i]), ulps * kEps * (std::fabs(want[i]) + 0.5f * std::fabs(x[i]) * u) + 1e-37f)
        << "at index " << i << ": x = " << x[i] << ": " << got[i] << " vs " << want[i];
  }
}

TEST(Gelu, ScalarHandComputed) {
  // Tanh-approximation values from Python (math.tanh in double).
  const std::vector<float> x = {0.0f, 1.0f, -1.0f, 2.0f, -3.0f, 0.5f, 20.0f, -20.0f};
  std::vector<float> y(x.size());
  ref().gelu(x.data(), y.data(), static_cast<int64_t>(x.size()));
  expect_close(y, {0.0f, 0.8411919906082768f, -0.15880800939172324f, 1.954597694087775f, -0.0036373920817729943f,
                   0.34571400982514394f, 20.0f, 0.0f},
               1e-7f, 1e-6f);
  const std::vector<float> up = {3, 3, 3, 3, 3, 3, 3, 3};
  std::vector<float> gated(x.size());
  ref().geglu(x.data(), up.data(), gated.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(gated[i], y[i] * 3.0f) << "at " << i;
}

TEST(Gelu, ScalarMatchesDoublePrecision) {
  const std::vector<float> x = random_vec(20000, -12, 12, 120);
  std::vector<float> y(x.size());
  ref().gelu(x.data(), y.data(), static_cast<int64_t>(x.size()));
  std::vector<float> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = static_cast<float>(gelu_double(x[i]));
  expect_gelu_close(y, want, x, {}, 2);
}

TEST(Gelu, SimdMatchesScalar) {
  for (int64_t n : kAwkwardLengths) {
    const std::vector<float> x = random_vec(n, -12, 12, 130 + n), up = random_vec(n, -2, 2, 131 + n);
    std::vector<float> want(n), want_gated(n);
    ref().gelu(x.data(), want.data(), n);
    ref().geglu(x.data(), up.data(), want_gated.data(), n);
    for (Isa isa : supported_isas()) {
      SCOPED_TRACE(fmt::format("{} n={}", isa_name(isa), n));
      const ElementwiseKernels& k = elementwise_kernels(isa);
      std::vector<float> got(n), inplace = x;
      k.gelu(x.data(), got.data(), n);
      expect_gelu_close(got, want, x, {}, 3);
      k.gelu(inplace.data(), inplace.data(), n);
      expect_gelu_close(inplace, want, x, {}, 3);
      std::vector<float> gated(n), gated_inplace = up;  // out aliasing up
      k.geglu(x.data(), up.data(), gated.data(), n);
      expect_gelu_close(gated, want_gated, x, up, 3);
      k.geglu(x.data(), gated_inplace.data(), gated_inplace.data(), n);
      expect_gelu_close(gated_inplace, want_gated, x, up, 3);
    }
  }
}

TEST(Gelu, EdgeCasesAgreeAcrossIsas) {
  const std::vector<float> x = {0.0f, -0.0f, 1e-30f, -1e-30f, 10.0f, -10.0f, 1e20f, -1e20f, kInf, -kInf,
                                std::numeric_limits<float>::quiet_NaN()};
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    std::vector<float> y(x.size());
    elementwise_kernels(isa).gelu(x.data(), y.data(), static_cast<int64_t>(x.size()));
    EXPECT_EQ(y[0], 0.0f);
    EXPECT_EQ(y[1], 0.0f);
    EXPECT_FLOAT_EQ(y[2], 0.5e-30f);
    EXPECT_FLOAT_EQ(y[3], -0.5e-30f);
    EXPECT_FLOAT_EQ(y[4], 10.0f);
    EXPECT_NEAR(y[5], 0.0f, 1e-30f);  // the reference's 1 + tanh(u) rounds to 0; the sigmoid form ~-1e-37
    EXPECT_EQ(y[6], 1e20f);
    EXPECT_EQ(y[7], 0.0f);
    EXPECT_EQ(y[8], kInf);
    EXPECT_TRUE(std::isnan(y[9])) << "-inf * 0";
    EXPECT_TRUE(std::isnan(y[10]));
  }
}

// ---- softcap / scale -----------------------------------------------------------------------------

TEST(Softcap, ScalarHandComputedAndDoublePrecision) {
  const std::vector<float> x = {0.0f, 45.0f, -3.0f, 1e6f, -kInf};
  std::vector<float> y(x.size());
  ref().softcap(x.data(), y.data(), static_cast<int64_t>(x.size()), 30.0f);
  expect_close(y, {0.0f, 27.154447609345993f, -2.9900398387486744f, 30.0f, -30.0f}, 0, 2e-7f);

  // cap tanh(x / cap) with x / cap rounded twice (x * f32(1 / cap)): within 8 ulp of |y| (see
  // elementwise.h; |x| sech^2(x / cap) <= 1.31 |y| bounds the argument error's effect).
  for (float cap : {1.0f, 30.0f, 50.0f}) {
    const std::vector<float> xs = random_vec(20000, -6 * cap, 6 * cap, 140 + static_cast<uint32_t>(cap));
    std::vector<float> ys(xs.size());
    ref().softcap(xs.data(), ys.data(), static_cast<int64_t>(xs.size()), cap);
    for (size_t i = 0; i < xs.size(); ++i) {
      const double want = cap * std::tanh(static_cast<double>(xs[i]) / cap);
      ASSERT_NEAR(ys[i], want, 8 * kEps * std::fabs(want)) << "cap " << cap << ", x = " << xs[i];
    }
  }
}

TEST(Softcap, SimdTanhWithinThreeUlpOfTanhf) {
  // cap = 1 makes softcap plain tanh: a dense scan over both branches of the SIMD tanh.
  std::vector<float> t;
  for (int i = -200000; i <= 200000; ++i) t.push_back(static_cast<float>(i) * 5e-5f);  // [-10, 10]
  for (float v : {1e-30f, -1e-30f, 1e-7f, 0.6249999f, 0.625f, -0.625f, 9.0f, 44.0f, 89.0f})
    t.push_back(v);
  std::vector<float> want(t.size());
  for (size_t i = 0; i < t.size(); ++i) want[i] = std::tanh(t[i]);
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    std::vector<float> got(t.size());
    elementwise_kernels(isa).softcap(t.data(), got.data(), static_cast<int64_t>(t.size()), 1.0f);
    int64_t worst = 0;
    for (size_t i = 0; i < t.size(); ++i) worst = std::max(worst, ulp_distance(got[i], want[i]));
    EXPECT_LE(worst, 3) << "max ulp distance to tanhf";
  }
}

TEST(Softcap, SimdMatchesScalar) {
  for (int64_t n : kAwkwardLengths) {
    std::vector<float> x = random_vec(n, -150, 150, 150 + n);
    for (int64_t i = 0; i < n; i += 3) x[i] *= 0.01f;  // small arguments: the polynomial branch
    std::vector<float> want(n);
    ref().softcap(x.data(), want.data(), n, 30.0f);
    for (Isa isa : supported_isas()) {
      SCOPED_TRACE(fmt::format("{} n={}", isa_name(isa), n));
      std::vector<float> got(n), inplace = x;
      elementwise_kernels(isa).softcap(x.data(), got.data(), n, 30.0f);
      elementwise_kernels(isa).softcap(inplace.data(), inplace.data(), n, 30.0f);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_LE(ulp_distance(got[i], want[i]), 4) << "x = " << x[i] << ": " << got[i] << " vs " << want[i];
        ASSERT_EQ(inplace[i], got[i]) << "at " << i;
      }
    }
  }
}

TEST(Softcap, EdgeCasesAgreeAcrossIsas) {
  const std::vector<float> x = {0.0f, -0.0f, 1e-30f, kInf, -kInf, 1e30f, std::numeric_limits<float>::quiet_NaN()};
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    std::vector<float> y(x.size());
    elementwise_kernels(isa).softcap(x.data(), y.data(), static_cast<int64_t>(x.size()), 50.0f);
    EXPECT_EQ(y[0], 0.0f);
    EXPECT_TRUE(std::signbit(y[1])) << "tanh(-0) = -0";
    EXPECT_FLOAT_EQ(y[2], 1e-30f);
    EXPECT_EQ(y[3], 50.0f);
    EXPECT_EQ(y[4], -50.0f);
    EXPECT_EQ(y[5], 50.0f);
    EXPECT_TRUE(std::isnan(y[6]));
  }
}

TEST(Scale, CorrectlyRoundedAndExactAcrossIsas) {
  for (int64_t n : kAwkwardLengths) {
    const std::vector<float> x = random_vec(n, -100, 100, 160 + n);
    const float s = 45.254833995939045f;  // sqrt(2048), Gemma's embedding scale
    std::vector<float> want(n);
    for (int64_t i = 0; i < n; ++i)  // the f32 product is the double product (exact) rounded once
      want[i] = static_cast<float>(static_cast<double>(x[i]) * static_cast<double>(s));
    for (Isa isa : supported_isas()) {
      SCOPED_TRACE(fmt::format("{} n={}", isa_name(isa), n));
      std::vector<float> got(n), inplace = x;
      elementwise_kernels(isa).scale(x.data(), got.data(), n, s);
      expect_bitwise_equal(got, want);
      elementwise_kernels(isa).scale(inplace.data(), inplace.data(), n, s);
      expect_bitwise_equal(inplace, want);
    }
  }
}

// ---- ops entries, per active ISA ----------------------------------------------------------------

TEST(ElementwiseOps, MatchScalarReferenceForEveryIsa) {
  ActiveIsaGuard guard;
  ThreadPool pool(2);
  const int64_t rows = 9, n = 4097;  // enough work to be split over both threads
  const std::vector<float> xv = random_vec(rows * n, -3, 3, 50), wv = random_vec(n, 0.5f, 1.5f, 51);
  const std::vector<float> uv = random_vec(rows * n, -2, 2, 52);

  std::vector<float> want_norm(rows * n), want_softmax = xv, want_swiglu(rows * n), want_add = xv;
  for (int64_t r = 0; r < rows; ++r) {
    ref().rmsnorm_row(xv.data() + r * n, wv.data(), n, 1e-5f, want_norm.data() + r * n);
    ref().softmax_row(want_softmax.data() + r * n, n);
  }
  ref().swiglu(xv.data(), uv.data(), want_swiglu.data(), rows * n);
  ref().add_inplace(want_add.data(), uv.data(), rows * n);

  // rope: (n_tokens 5, n_heads 8, head_dim 64), n_rot 32, with the scalar reference per token.
  const int64_t n_tok = 5, n_heads = 8, head_dim = 64;
  const std::vector<int32_t> pos = {0, 1, 7, 100, 4095};
  const std::vector<float> rv = random_vec(n_tok * n_heads * head_dim, -1, 1, 53);
  ops::RopeParams rp;
  rp.n_rot = 32;
  rp.freq_base = 500000.0f;
  rp.freq_scale = 0.25f;
  std::vector<std::vector<float>> want_rope(2, rv);  // [Normal, Neox]
  for (int mode = 0; mode < 2; ++mode)
    for (int64_t t = 0; t < n_tok; ++t) {
      std::vector<float> cs(rp.n_rot);
      kernels::rope_cos_sin(static_cast<float>(pos[t]), rp.n_rot, rp.freq_base, rp.freq_scale, cs.data());
      ref().rope_rows(want_rope[mode].data() + t * n_heads * head_dim, n_heads, head_dim, rp.n_rot, mode == 1,
                      cs.data());
    }

  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    set_active_isa(isa);
    const Tensor x = tensor_from({rows, n}, xv), w = tensor_from({n}, wv), u = tensor_from({rows, n}, uv);

    Tensor y = Tensor::empty(DType::F32, {rows, n});
    ops::rmsnorm(x, w, 1e-5f, y, pool);
    expect_close(values_of(y), want_norm, 0, 1e-6f);

    Tensor s = tensor_from({rows, n}, xv);
    ops::softmax_rows(s);
    expect_close(values_of(s), want_softmax, 1e-12f, 1e-6f);

    Tensor g = tensor_from({rows, n}, xv);
    ops::swiglu(g, u, g, pool);  // out aliasing gate, as the model does
    expect_close(values_of(g), want_swiglu, 1e-30f, 1e-6f);

    Tensor a = tensor_from({rows, n}, xv);
    ops::add_inplace(a, u, pool);
    expect_bitwise_equal(values_of(a), want_add);

    for (int mode = 0; mode < 2; ++mode) {
      rp.mode = mode == 1 ? ops::RopeMode::Neox : ops::RopeMode::Normal;
      Tensor r = tensor_from({n_tok, n_heads, head_dim}, rv);
      ops::rope(r, pos.data(), rp, pool);
      expect_close(values_of(r), want_rope[mode], 1e-6f, 0);
    }
  }
}

TEST(ElementwiseOps, LayerNormActivationsAndRopeFactorsMatchScalarReferenceForEveryIsa) {
  ActiveIsaGuard guard;
  ThreadPool pool(2);
  const int64_t rows = 9, n = 4097;  // enough work to be split over both threads
  const std::vector<float> xv = random_vec(rows * n, -3, 3, 60), uv = random_vec(rows * n, -2, 2, 61);
  const std::vector<float> wv = random_vec(n, 0.5f, 1.5f, 62), bv = random_vec(n, -1, 1, 63);
  const float cap = 30.0f, s = 45.25f;
  const std::vector<float> big = random_vec(rows * n, -100, 100, 64);  // soft-capping input

  std::vector<float> want_norm(rows * n), want_gelu(rows * n), want_geglu(rows * n), want_cap(rows * n),
      want_scale(rows * n);
  for (int64_t r = 0; r < rows; ++r)
    ref().layernorm_row(xv.data() + r * n, wv.data(), bv.data(), n, 1e-5f, want_norm.data() + r * n);
  ref().gelu(xv.data(), want_gelu.data(), rows * n);
  ref().geglu(xv.data(), uv.data(), want_geglu.data(), rows * n);
  ref().softcap(big.data(), want_cap.data(), rows * n, cap);
  ref().scale(xv.data(), want_scale.data(), rows * n, s);

  // rope with frequency factors: (n_tokens 4, n_heads 4, head_dim 64), n_rot 64.
  const int64_t n_tok = 4, n_heads = 4, head_dim = 64;
  const std::vector<int32_t> pos = {0, 3, 511, 8000};
  const std::vector<float> rv = random_vec(n_tok * n_heads * head_dim, -1, 1, 65);
  const std::vector<float> factors = random_vec(head_dim / 2, 1.0f, 40.0f, 66);
  ops::RopeParams rp;
  rp.n_rot = head_dim;
  rp.freq_base = 500000.0f;
  rp.mode = ops::RopeMode::Neox;
  rp.freq_factors = factors.data();
  std::vector<float> want_rope = rv;
  for (int64_t t = 0; t < n_tok; ++t) {
    std::vector<float> cs(rp.n_rot);
    kernels::rope_cos_sin(static_cast<float>(pos[t]), rp.n_rot, rp.freq_base, rp.freq_scale, cs.data(),
                          factors.data());
    ref().rope_rows(want_rope.data() + t * n_heads * head_dim, n_heads, head_dim, rp.n_rot, true, cs.data());
  }

  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    set_active_isa(isa);
    const Tensor x = tensor_from({rows, n}, xv), w = tensor_from({n}, wv), b = tensor_from({n}, bv);
    const Tensor u = tensor_from({rows, n}, uv);

    Tensor y = tensor_from({rows, n}, xv);
    ops::layernorm(y, w, b, 1e-5f, y, pool);  // in place, as the model does
    expect_close(values_of(y), want_norm, 1e-6f, 1e-6f);

    Tensor g = tensor_from({rows, n}, xv);
    ops::gelu_inplace(g, pool);
    expect_gelu_close(values_of(g), want_gelu, xv, {}, 3);

    Tensor gg = tensor_from({rows, n}, xv);
    ops::geglu(gg, u, gg, pool);  // out aliasing gate
    expect_gelu_close(values_of(gg), want_geglu, xv, uv, 3);

    Tensor c = tensor_from({rows, n}, big);
    ops::softcap_inplace(c, cap, pool);
    const std::vector<float> got_cap = values_of(c);
    for (size_t i = 0; i < got_cap.size(); ++i) ASSERT_LE(ulp_distance(got_cap[i], want_cap[i]), 4) << "at " << i;

    Tensor sc = tensor_from({rows, n}, xv);
    ops::scale_inplace(sc, s, pool);
    expect_bitwise_equal(values_of(sc), want_scale);

    Tensor r = tensor_from({n_tok, n_heads, head_dim}, rv);
    ops::rope(r, pos.data(), rp, pool);
    expect_close(values_of(r), want_rope, 1e-6f, 0);
  }
}

TEST(ElementwiseOps, EmptyTensorsAreNoOps) {
  ThreadPool pool(1);
  Tensor x = Tensor::empty(DType::F32, {0, 8}), w = Tensor::empty(DType::F32, {8}), b = Tensor::empty(DType::F32, {8});
  ops::layernorm(x, w, b, 1e-5f, x, pool);
  ops::geglu(x, x, x, pool);
  ops::gelu_inplace(x, pool);
  ops::softcap_inplace(x, 30.0f, pool);
  ops::scale_inplace(x, 2.0f, pool);
  EXPECT_EQ(x.numel(), 0);
}

// ---- validation ----------------------------------------------------------------------------------

TEST(ElementwiseOps, RejectBadArguments) {
  ThreadPool pool(1);
  Tensor x = Tensor::empty(DType::F32, {2, 64}), y = Tensor::empty(DType::F32, {2, 64});
  Tensor w = Tensor::empty(DType::F32, {64}), w32 = Tensor::empty(DType::F32, {32});
  Tensor h = Tensor::empty(DType::F16, {2, 64});

  expect_invalid([&] { ops::rmsnorm(x, w32, 1e-5f, y, pool); }, {"rmsnorm", "w", "(32)", "(64)"});
  expect_invalid([&] { ops::rmsnorm(h, w, 1e-5f, y, pool); }, {"rmsnorm", "x", "f16", "f32"});
  expect_invalid([&] { ops::rmsnorm(x, w, 1e-5f, w, pool); }, {"rmsnorm", "y", "(64)", "(2, 64)"});
  expect_invalid([&] { ops::rmsnorm(x, w, -1.0f, y, pool); }, {"rmsnorm", "eps", "-1"});
  Tensor shifted(DType::F32, {2, 64}, x.data_as<float>() + 1);  // partially overlaps x
  expect_invalid([&] { ops::rmsnorm(x, w, 1e-5f, shifted, pool); }, {"rmsnorm", "overlaps"});
  Tensor on_cuda(DType::F32, {2, 64}, y.data(), {}, Device::CUDA);
  expect_invalid([&] { ops::rmsnorm(x, w, 1e-5f, on_cuda, pool); }, {"rmsnorm", "y", "CUDA"});

  expect_invalid([&] { ops::softmax_rows(h); }, {"softmax_rows", "f16", "f32"});

  Tensor up = Tensor::empty(DType::F32, {2, 63});
  expect_invalid([&] { ops::swiglu(x, up, y, pool); }, {"swiglu", "up", "(2, 63)", "(2, 64)"});
  expect_invalid([&] { ops::swiglu(x, h, y, pool); }, {"swiglu", "up", "f16"});
  expect_invalid([&] { ops::add_inplace(x, up, pool); }, {"add_inplace", "x", "(2, 63)", "(2, 64)"});
  expect_invalid([&] { ops::add_inplace(shifted, x, pool); }, {"add_inplace", "overlaps"});

  Tensor r = Tensor::empty(DType::F32, {2, 4, 16});
  const int32_t pos[2] = {0, 1}, neg[2] = {0, -3};
  ops::RopeParams p;
  p.n_rot = 18;
  expect_invalid([&] { ops::rope(r, pos, p, pool); }, {"rope", "n_rot 18", "head_dim 16"});
  p.n_rot = 7;
  expect_invalid([&] { ops::rope(r, pos, p, pool); }, {"rope", "n_rot 7", "even"});
  p.n_rot = 0;
  expect_invalid([&] { ops::rope(r, pos, p, pool); }, {"rope", "n_rot 0"});
  p.n_rot = 16;
  expect_invalid([&] { ops::rope(r, neg, p, pool); }, {"rope", "pos[1] = -3"});
  expect_invalid([&] { ops::rope(x, pos, p, pool); }, {"rope", "(2, 64)", "3 dims"});
  p.freq_base = 0.0f;
  expect_invalid([&] { ops::rope(r, pos, p, pool); }, {"rope", "freq_base 0"});
  p.freq_base = 10000.0f;
  std::vector<float> factors(8, 1.0f);
  p.freq_factors = factors.data();
  factors[5] = 0.0f;
  expect_invalid([&] { ops::rope(r, pos, p, pool); }, {"rope", "freq_factors[5] = 0", "> 0"});
  factors[5] = 1.0f;
  factors[7] = std::numeric_limits<float>::infinity();
  expect_invalid([&] { ops::rope(r, pos, p, pool); }, {"rope", "freq_factors[7] = inf", "finite"});
  factors[7] = std::numeric_limits<float>::quiet_NaN();
  expect_invalid([&] { ops::rope(r, pos, p, pool); }, {"rope", "freq_factors[7] = nan"});
  factors[7] = -2.0f;
  expect_invalid([&] { ops::rope(r, pos, p, pool); }, {"rope", "freq_factors[7] = -2"});
}

TEST(ElementwiseOps, RejectBadLayerNormAndActivationArguments) {
  ThreadPool pool(1);
  Tensor x = Tensor::empty(DType::F32, {2, 64}), y = Tensor::empty(DType::F32, {2, 64});
  Tensor w = Tensor::empty(DType::F32, {64}), b = Tensor::empty(DType::F32, {64});
  Tensor v32 = Tensor::empty(DType::F32, {32}), h = Tensor::empty(DType::F16, {2, 64});
  Tensor h64 = Tensor::empty(DType::F16, {64});

  expect_invalid([&] { ops::layernorm(x, w, v32, 1e-5f, y, pool); }, {"layernorm", "b", "(32)", "(64)"});
  expect_invalid([&] { ops::layernorm(x, v32, b, 1e-5f, y, pool); }, {"layernorm", "w", "(32)", "(64)"});
  expect_invalid([&] { ops::layernorm(x, w, h64, 1e-5f, y, pool); }, {"layernorm", "b", "f16", "f32"});
  expect_invalid([&] { ops::layernorm(h, w, b, 1e-5f, y, pool); }, {"layernorm", "x", "f16", "f32"});
  expect_invalid([&] { ops::layernorm(x, w, b, 1e-5f, w, pool); }, {"layernorm", "y", "(64)", "(2, 64)"});
  expect_invalid([&] { ops::layernorm(x, w, b, -1.0f, y, pool); }, {"layernorm", "eps", "-1"});
  expect_invalid([&] { ops::layernorm(x, w, b, std::numeric_limits<float>::quiet_NaN(), y, pool); },
                 {"layernorm", "eps", "nan"});
  Tensor shifted(DType::F32, {2, 64}, x.data_as<float>() + 1);  // partially overlaps x
  expect_invalid([&] { ops::layernorm(x, w, b, 1e-5f, shifted, pool); }, {"layernorm", "overlaps x"});
  Tensor b_in_y(DType::F32, {64}, y.data_as<float>() + 64);  // b is y's second row
  expect_invalid([&] { ops::layernorm(x, w, b_in_y, 1e-5f, y, pool); }, {"layernorm", "y (2, 64) overlaps b"});
  Tensor on_cuda(DType::F32, {64}, b.data(), {}, Device::CUDA);
  expect_invalid([&] { ops::layernorm(x, w, on_cuda, 1e-5f, y, pool); }, {"layernorm", "b", "CUDA"});

  Tensor up = Tensor::empty(DType::F32, {2, 63});
  expect_invalid([&] { ops::geglu(x, up, y, pool); }, {"geglu", "up", "(2, 63)", "(2, 64)"});
  expect_invalid([&] { ops::geglu(x, y, h, pool); }, {"geglu", "out", "f16"});
  expect_invalid([&] { ops::geglu(x, y, shifted, pool); }, {"geglu", "out", "overlaps gate"});
  expect_invalid([&] { ops::gelu_inplace(h, pool); }, {"gelu_inplace", "x", "f16", "f32"});
  expect_invalid([&] { ops::softcap_inplace(h, 30.0f, pool); }, {"softcap_inplace", "x", "f16"});
  expect_invalid([&] { ops::softcap_inplace(x, 0.0f, pool); }, {"softcap_inplace", "cap 0", "> 0"});
  expect_invalid([&] { ops::softcap_inplace(x, -30.0f, pool); }, {"softcap_inplace", "cap -30"});
  expect_invalid([&] { ops::softcap_inplace(x, std::numeric_limits<float>::infinity(), pool); },
                 {"softcap_inplace", "cap inf", "finite"});
  expect_invalid([&] { ops::scale_inplace(h, 2.0f, pool); }, {"scale_inplace", "x", "f16"});
  expect_invalid([&] { ops::scale_inplace(x, std::numeric_limits<float>::quiet_NaN(), pool); },
                 {"scale_inplace", "scale nan", "finite"});
}

// Every op validates through the one shared validator (src/ops/check.h): an operand on another
// device, of the wrong dtype or rank is rejected with the same message, naming the op, the operand,
// its shape and what was expected.
TEST(OpsValidation, EveryOpNamesTheOperandShapeAndLimitAlike) {
  ThreadPool pool(1);
  std::vector<float> buf(4 * 64);
  Tensor cuda(DType::F32, {4, 64}, buf.data(), {}, Device::CUDA);  // (4, 64), not on the CPU
  Tensor cuda3(DType::F32, {4, 1, 64}, buf.data(), {}, Device::CUDA);
  Tensor f16 = Tensor::empty(DType::F16, {4, 64});
  Tensor x = Tensor::empty(DType::F32, {4, 64}), y = Tensor::empty(DType::F32, {4, 64});
  Tensor w = Tensor::empty(DType::F32, {64}), x3 = Tensor::empty(DType::F32, {4, 1, 64});
  const int32_t pos[4] = {0, 1, 2, 3};
  ops::RopeParams rp;
  rp.n_rot = 64;
  ops::AttentionParams ap;
  ap.scale = 0.125f;
  const std::vector<std::pair<std::function<void()>, std::string>> cases = {
      {[&] { ops::rmsnorm(cuda, w, 1e-5f, y, pool); }, "rmsnorm: x (4, 64) is a CUDA tensor, not on the CPU"},
      {[&] { ops::layernorm(x, w, w, 1e-5f, cuda, pool); }, "layernorm: y (4, 64) is a CUDA tensor, not on the CPU"},
      {[&] { ops::swiglu(x, cuda, y, pool); }, "swiglu: up (4, 64) is a CUDA tensor, not on the CPU"},
      {[&] { ops::gelu_inplace(cuda, pool); }, "gelu_inplace: x (4, 64) is a CUDA tensor, not on the CPU"},
      {[&] { ops::add_inplace(y, cuda, pool); }, "add_inplace: x (4, 64) is a CUDA tensor, not on the CPU"},
      {[&] { ops::add_bias_rows(cuda, w, pool); }, "add_bias_rows: y (4, 64) is a CUDA tensor, not on the CPU"},
      {[&] { ops::softmax_rows(cuda); }, "softmax_rows: x (4, 64) is a CUDA tensor, not on the CPU"},
      {[&] { ops::rope(cuda3, pos, rp, pool); }, "rope: x (4, 1, 64) is a CUDA tensor, not on the CPU"},
      {[&] { ops::matmul(x, cuda, y, pool); }, "matmul: input x (4, 64) is a CUDA tensor, not on the CPU"},
      {[&] { ops::attention(x3, x3, x3, pos, ap, cuda3, pool); },
       "attention: out (4, 1, 64) is a CUDA tensor, not on the CPU"},
      {[&] { ops::rmsnorm(f16, w, 1e-5f, y, pool); }, "rmsnorm: x (4, 64) has dtype f16, expected f32"},
      {[&] { ops::softcap_inplace(f16, 30.0f, pool); }, "softcap_inplace: x (4, 64) has dtype f16, expected f32"},
      {[&] { ops::softmax_rows(f16); }, "softmax_rows: x (4, 64) has dtype f16, expected f32"},
      {[&] { ops::matmul(x, f16, y, pool); }, "matmul: input x (4, 64) has dtype f16, expected f32"},
      {[&] { ops::attention(x3, x3, x3, pos, ap, x, pool); },
       "attention: out (4, 64) has 2 dims, expected 3 dims (n_tokens, n_head, head_dim)"},
      {[&] { ops::rope(x, pos, rp, pool); }, "rope: x (4, 64) has 2 dims, expected 3 dims (n_tokens, n_heads, head_dim)"},
      {[&] { ops::add_bias_rows(x3, w, pool); }, "add_bias_rows: y (4, 1, 64) has 3 dims, expected 2 dims (n, d)"},
  };
  for (const auto& [call, needle] : cases) expect_invalid(call, {needle});
}

}  // namespace
}  // namespace contrail
