// Tests of the matmul kernels (every ISA variant this CPU runs) and of ops::matmul / ops::get_rows.
//
// Oracles: a double-precision x W^T computed here from the exact f32 value of every stored weight
// (f16 / bf16 / q8_0 decoded with contrail/core/half.h), and the scalar kernels, which the SIMD
// variants must match. Tolerances are relative to sum_k |w_k| |x_k| of each output, the scale of
// f32 rounding in a dot product. For q8_0 the kernels are checked on quantized activations
// (same math, tight tolerance) and against the unquantized product (quantization-error bound).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "contrail/core/cpu_features.h"
#include "contrail/core/error.h"
#include "contrail/core/half.h"
#include "contrail/core/tensor.h"
#include "contrail/core/thread_pool.h"
#include "contrail/kernels/matmul.h"
#include "contrail/kernels/quantize.h"
#include "contrail/ops/matmul.h"
#include "kernels/isa_kernels.h"
#include "test_util.h"

namespace contrail {
namespace {

using kernels::MatmulArgs;
using kernels::MatmulFn;
using kernels::QuantizeActFn;

// f32 rounding in sums of up to ~4k products stays far below this (x mag); a dropped or doubled
// element, a wrong row or a wrong scale does not.
constexpr double kTol = 2e-5;

const std::vector<int64_t> kFloatNIn = {1, 7, 33, 4097};
const std::vector<int64_t> kQ8NIn = {32, 64, 96, 4096 + 32};
const std::vector<int64_t> kNOut = {1, 7, 33, 257};
// 1..7 reach every few-token specialisation of every variant and the first many-token count; 17 and
// 64 span several token blocks.
const std::vector<int64_t> kNTokens = {1, 2, 3, 4, 5, 6, 7, 17, 64};

// ---- kernel variants -------------------------------------------------------------------------------

struct Variant {
  std::string name;
  MatmulFn f32, f16, bf16, q8_0;
  QuantizeActFn quantize;
};

// Every variant this CPU can run, scalar first.
std::vector<Variant> variants() {
  std::vector<Variant> v{{"scalar", kernels::matmul_f32_scalar, kernels::matmul_f16_scalar,
                          kernels::matmul_bf16_scalar, kernels::matmul_q8_0_scalar,
                          kernels::quantize_act_q8_0_scalar}};
  const auto add = [&](const char* name, const kernels::MatmulKernels& k, MatmulFn q8_0) {
    v.push_back({name, k.f32, k.f16, k.bf16, q8_0, k.quantize_act_q8_0});
  };
  if (isa_supported(Isa::Avx2)) add("avx2", kernels::kMatmulAvx2, kernels::kMatmulAvx2.q8_0);
  if (isa_supported(Isa::Avx512)) {
    add("avx512", kernels::kMatmulAvx512, kernels::kMatmulAvx512.q8_0);
    if (cpu_features().avx512vnni) add("avx512vnni", kernels::kMatmulAvx512, kernels::matmul_q8_0_avx512vnni);
  }
  return v;
}

MatmulFn kernel_of(const Variant& v, DType t) {
  switch (t) {
    case DType::F32: return v.f32;
    case DType::F16: return v.f16;
    case DType::BF16: return v.bf16;
    default: return v.q8_0;
  }
}

// ---- data ------------------------------------------------------------------------------------------

// A weight matrix in its storage dtype plus the exact f32 value of every stored element.
struct Weights {
  DType dtype;
  int64_t n_out, n_in;
  std::vector<uint8_t> bytes;  // (n_out, row_bytes)
  std::vector<float> values;   // (n_out, n_in)
};

std::vector<float> random_floats(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

Weights make_weights(DType dt, int64_t n_out, int64_t n_in, std::mt19937& rng) {
  Weights w{dt, n_out, n_in, std::vector<uint8_t>(row_bytes(dt, n_in) * static_cast<size_t>(n_out)),
            random_floats(static_cast<size_t>(n_out * n_in), rng)};
  const size_t n = w.values.size();
  switch (dt) {
    case DType::F32: std::memcpy(w.bytes.data(), w.values.data(), n * sizeof(float)); break;
    case DType::F16:
    case DType::BF16: {
      auto* h = reinterpret_cast<uint16_t*>(w.bytes.data());
      for (size_t i = 0; i < n; ++i) {
        h[i] = dt == DType::F16 ? f32_to_f16(w.values[i]) : f32_to_bf16(w.values[i]);
        w.values[i] = dt == DType::F16 ? f16_to_f32(h[i]) : bf16_to_f32(h[i]);
      }
      break;
    }
    default: {
      auto* blocks = reinterpret_cast<BlockQ8_0*>(w.bytes.data());
      kernels::quantize_row_q8_0(w.values.data(), static_cast<int64_t>(n), blocks);
      for (size_t i = 0; i < n; ++i) w.values[i] = f16_to_f32(blocks[i / 32].d) * blocks[i / 32].qs[i % 32];
      break;
    }
  }
  return w;
}

// Activations quantized for the q8_0 kernels, and their exact dequantized values.
struct QuantActs {
  std::vector<int8_t> qs;     // (n_tokens, n_in)
  std::vector<float> d;       // (n_tokens, n_in / 32)
  std::vector<float> values;  // (n_tokens, n_in): d * q
};

QuantActs quantize_acts(QuantizeActFn fn, const std::vector<float>& x, int64_t n_tokens, int64_t n_in) {
  const int64_t nb = n_in / 32;
  QuantActs q{std::vector<int8_t>(x.size()), std::vector<float>(static_cast<size_t>(n_tokens * nb)),
              std::vector<float>(x.size())};
  for (int64_t t = 0; t < n_tokens; ++t) fn(x.data() + t * n_in, n_in, q.qs.data() + t * n_in, q.d.data() + t * nb);
  for (size_t i = 0; i < x.size(); ++i) q.values[i] = q.d[i / 32] * q.qs[i];
  return q;
}

// Double-precision y = x W^T and, per output, sum |w| |x| (the tolerance scale).
struct Reference {
  std::vector<double> y, mag;  // (n_tokens, n_out)
};

Reference reference(const std::vector<float>& w, const std::vector<float>& x, int64_t n_out, int64_t n_in,
                    int64_t n_tokens) {
  Reference r{std::vector<double>(static_cast<size_t>(n_tokens * n_out)),
              std::vector<double>(static_cast<size_t>(n_tokens * n_out))};
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t o = 0; o < n_out; ++o) {
      double s = 0, m = 0;
      for (int64_t k = 0; k < n_in; ++k) {
        const double p = double{w[o * n_in + k]} * double{x[t * n_in + k]};
        s += p;
        m += std::fabs(p);
      }
      r.y[t * n_out + o] = s;
      r.mag[t * n_out + o] = m;
    }
  return r;
}

// Checks |got - ref| <= rel * mag (+ abs) everywhere; reports the first few misses.
void expect_close(const std::vector<float>& got, const Reference& ref, double rel, double abs,
                  const std::string& what) {
  ASSERT_EQ(got.size(), ref.y.size()) << what;
  int misses = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(double{got[i]} - ref.y[i]);
    if (!(err <= rel * ref.mag[i] + abs) && ++misses <= 3)
      ADD_FAILURE() << what << ": y[" << i << "] = " << got[i] << ", expected " << ref.y[i] << " (err " << err
                    << ", allowed " << rel * ref.mag[i] + abs << ")";
  }
  EXPECT_EQ(misses, 0) << what;
}

// Calls a kernel on rows [row_begin, row_end) of y (NaN elsewhere, to catch stray writes).
void run_kernel(MatmulFn fn, const Weights& w, const std::vector<float>& x, const QuantActs* q, int64_t n_tokens,
                int64_t row_begin, int64_t row_end, std::vector<float>& y, int64_t scratch_floats = 0) {
  MatmulArgs a;
  a.w = w.bytes.data();
  a.x = x.data();
  a.xq = q ? q->qs.data() : nullptr;
  a.xd = q ? q->d.data() : nullptr;
  a.y = y.data();
  a.n_in = w.n_in;
  a.n_out = w.n_out;
  a.n_tokens = n_tokens;
  a.row_begin = row_begin;
  a.row_end = row_end;
  a.scratch_floats = scratch_floats > 0 ? scratch_floats : kernels::matmul_scratch_floats(w.n_in);
  std::vector<float> scratch(static_cast<size_t>(a.scratch_floats));
  a.scratch = scratch.data();
  fn(a);
}

std::vector<float> nan_output(int64_t n_tokens, int64_t n_out) {
  return std::vector<float>(static_cast<size_t>(n_tokens * n_out), std::numeric_limits<float>::quiet_NaN());
}

std::string case_name(DType dt, int64_t n_out, int64_t n_in, int64_t n_tokens) {
  return std::string(dtype_name(dt)) + " n_out=" + std::to_string(n_out) + " n_in=" + std::to_string(n_in) +
         " n_tokens=" + std::to_string(n_tokens);
}

// ---- kernels ---------------------------------------------------------------------------------------

// Every variant on every shape of the grid, against the double reference; the scalar kernel's
// result is also the oracle each SIMD variant must match. A second call split at an odd row
// must reproduce the full call bit for bit.
void check_float_kernels(DType dt) {
  std::mt19937 rng(1234 + static_cast<unsigned>(dt));
  const std::vector<Variant> vs = variants();
  for (int64_t n_in : kFloatNIn)
    for (int64_t n_out : kNOut) {
      const Weights w = make_weights(dt, n_out, n_in, rng);
      const int64_t max_tokens = kNTokens.back();
      const std::vector<float> x_all = random_floats(static_cast<size_t>(max_tokens * n_in), rng);
      for (int64_t n_tokens : kNTokens) {
        const std::vector<float> x(x_all.begin(), x_all.begin() + n_tokens * n_in);
        const std::string name = case_name(dt, n_out, n_in, n_tokens);
        const Reference ref = reference(w.values, x, n_out, n_in, n_tokens);
        std::vector<float> y_scalar = nan_output(n_tokens, n_out);
        run_kernel(kernel_of(vs[0], dt), w, x, nullptr, n_tokens, 0, n_out, y_scalar);
        expect_close(y_scalar, ref, kTol, 0, name + " scalar vs reference");
        Reference oracle = ref;  // same tolerance scale, scalar results as the expected values
        for (size_t i = 0; i < y_scalar.size(); ++i) oracle.y[i] = y_scalar[i];
        for (size_t v = 1; v < vs.size(); ++v) {
          std::vector<float> y = nan_output(n_tokens, n_out);
          run_kernel(kernel_of(vs[v], dt), w, x, nullptr, n_tokens, 0, n_out, y);
          expect_close(y, oracle, kTol, 0, name + " " + vs[v].name + " vs scalar");
          const int64_t split = n_out / 2 + 1;  // odd boundaries inside register tiles
          std::vector<float> y_split = nan_output(n_tokens, n_out);
          run_kernel(kernel_of(vs[v], dt), w, x, nullptr, n_tokens, 0, split, y_split);
          run_kernel(kernel_of(vs[v], dt), w, x, nullptr, n_tokens, split, n_out, y_split);
          EXPECT_EQ(0, std::memcmp(y.data(), y_split.data(), y.size() * sizeof(float)))
              << name << " " << vs[v].name << ": a row split changed the results";
        }
      }
    }
}

TEST(MatmulKernels, F32AllVariants) { check_float_kernels(DType::F32); }
TEST(MatmulKernels, F16AllVariants) { check_float_kernels(DType::F16); }
TEST(MatmulKernels, Bf16AllVariants) { check_float_kernels(DType::BF16); }

// The smallest scratch the contract allows and other odd sizes: panels not dividing the rows, k
// split into many chunks; rows [0, 2) are outside the requested range and must stay untouched.
TEST(MatmulKernels, SmallScratch) {
  std::mt19937 rng(77);
  const int64_t n_out = 70, n_in = 1120, n_tokens = 19;
  for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::Q8_0}) {
    const Weights w = make_weights(dt, n_out, n_in, rng);
    const std::vector<float> x = random_floats(static_cast<size_t>(n_tokens * n_in), rng);
    const QuantActs q = quantize_acts(kernels::quantize_act_q8_0_scalar, x, n_tokens, n_in);
    const bool q8 = dt == DType::Q8_0;
    const Reference ref = reference(w.values, q8 ? q.values : x, n_out, n_in, n_tokens);
    for (const Variant& v : variants())
      for (int64_t scratch_floats : {n_in, 3 * n_in, int64_t{64 * 40}}) {
        std::vector<float> y = nan_output(n_tokens, n_out);
        run_kernel(kernel_of(v, dt), w, x, q8 ? &q : nullptr, n_tokens, 2, n_out, y, scratch_floats);
        for (int64_t t = 0; t < n_tokens; ++t)
          for (int64_t o = 0; o < 2; ++o) {
            EXPECT_TRUE(std::isnan(y[t * n_out + o])) << v.name;
            y[t * n_out + o] = static_cast<float>(ref.y[t * n_out + o]);
          }
        expect_close(y, ref, kTol, 0,
                     std::string(dtype_name(dt)) + " " + v.name + " scratch=" + std::to_string(scratch_floats));
      }
  }
}

TEST(MatmulKernels, Q8_0AllVariants) {
  std::mt19937 rng(99);
  const std::vector<Variant> vs = variants();
  for (int64_t n_in : kQ8NIn)
    for (int64_t n_out : kNOut) {
      const Weights w = make_weights(DType::Q8_0, n_out, n_in, rng);
      const std::vector<float> x_all = random_floats(static_cast<size_t>(kNTokens.back() * n_in), rng);
      for (int64_t n_tokens : kNTokens) {
        const std::vector<float> x(x_all.begin(), x_all.begin() + n_tokens * n_in);
        const std::string name = case_name(DType::Q8_0, n_out, n_in, n_tokens);
        const QuantActs q = quantize_acts(kernels::quantize_act_q8_0_scalar, x, n_tokens, n_in);
        // Same math: the product of the dequantized weights and dequantized activations.
        const Reference ref_q = reference(w.values, q.values, n_out, n_in, n_tokens);
        std::vector<float> y_scalar = nan_output(n_tokens, n_out);
        run_kernel(vs[0].q8_0, w, x, &q, n_tokens, 0, n_out, y_scalar);
        expect_close(y_scalar, ref_q, kTol, 0, name + " scalar vs quantized reference");
        // Looser: the unquantized activations. |x - d q| <= d / 2 (rounding) + 127 d 2^-11 (d
        // rounded to f16) < 0.57 d per element.
        Reference ref_f = reference(w.values, x, n_out, n_in, n_tokens);
        for (int64_t t = 0; t < n_tokens; ++t)
          for (int64_t o = 0; o < n_out; ++o) {
            double bound = 0;
            for (int64_t k = 0; k < n_in; ++k)
              bound += std::fabs(double{w.values[o * n_in + k]}) * 0.57 * q.d[(t * n_in + k) / 32];
            ref_f.mag[t * n_out + o] = bound / kTol + ref_q.mag[t * n_out + o];
          }
        expect_close(y_scalar, ref_f, kTol, 0, name + " scalar vs f32 reference");

        Reference oracle = ref_q;
        for (size_t i = 0; i < y_scalar.size(); ++i) oracle.y[i] = y_scalar[i];
        for (size_t v = 1; v < vs.size(); ++v) {
          std::vector<float> y = nan_output(n_tokens, n_out);
          run_kernel(vs[v].q8_0, w, x, &q, n_tokens, 0, n_out, y);
          expect_close(y, oracle, kTol, 0, name + " " + vs[v].name + " vs scalar");
          const int64_t split = n_out / 2 + 1;
          std::vector<float> y_split = nan_output(n_tokens, n_out);
          run_kernel(vs[v].q8_0, w, x, &q, n_tokens, 0, split, y_split);
          run_kernel(vs[v].q8_0, w, x, &q, n_tokens, split, n_out, y_split);
          EXPECT_EQ(0, std::memcmp(y.data(), y_split.data(), y.size() * sizeof(float)))
              << name << " " << vs[v].name << ": a row split changed the results";
        }
      }
    }
}

// q = -128 never comes out of the quantizer but is a valid stored value; the sign tricks of the
// SIMD kernels must still multiply it exactly.
TEST(MatmulKernels, Q8_0ExtremeQuants) {
  std::mt19937 rng(5);
  const int64_t n_out = 9, n_in = 96, n_tokens = 6;
  Weights w = make_weights(DType::Q8_0, n_out, n_in, rng);
  auto* blocks = reinterpret_cast<BlockQ8_0*>(w.bytes.data());
  for (int64_t i = 0; i < n_out * n_in; i += 3) {
    BlockQ8_0& b = blocks[i / 32];
    b.qs[i % 32] = static_cast<int8_t>(i % 2 ? -128 : 127);
    w.values[i] = f16_to_f32(b.d) * b.qs[i % 32];
  }
  std::vector<float> x = random_floats(static_cast<size_t>(n_tokens * n_in), rng);
  for (size_t i = 0; i < x.size(); i += 5) x[i] = i % 2 ? -1.0f : 1.0f;  // hits q = +-127
  for (const Variant& v : variants()) {
    const QuantActs q = quantize_acts(v.quantize, x, n_tokens, n_in);
    const Reference ref = reference(w.values, q.values, n_out, n_in, n_tokens);
    std::vector<float> y = nan_output(n_tokens, n_out);
    run_kernel(v.q8_0, w, x, &q, n_tokens, 0, n_out, y);
    expect_close(y, ref, kTol, 0, v.name + " extreme quants");
  }
}

// ---- activation quantization -------------------------------------------------------------------

TEST(QuantizeAct, KnownValuesRoundHalfToEven) {
  // amax = 127: d = 1 and q = round-half-even(x) (ggml-cpu's x86 rounding, not roundf).
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[1] = 2.5f;   // -> 2
  x[2] = -3.5f;  // -> -4
  x[3] = 0.5f;   // -> 0
  x[4] = -100.4f;
  std::vector<int8_t> qs(32);
  float d = 0;
  kernels::quantize_act_q8_0_scalar(x.data(), 32, qs.data(), &d);
  EXPECT_EQ(d, 1.0f);
  EXPECT_EQ(qs[0], 127);
  EXPECT_EQ(qs[1], 2);
  EXPECT_EQ(qs[2], -4);
  EXPECT_EQ(qs[3], 0);
  EXPECT_EQ(qs[4], -100);
  EXPECT_EQ(qs[5], 0);
}

TEST(QuantizeAct, AllVariantsBitIdentical) {
  std::mt19937 rng(42);
  const int64_t n = 32 * 40;
  std::vector<float> x = random_floats(static_cast<size_t>(n), rng);
  for (int64_t i = 0; i < 32; ++i) x[i] = 0.0f;                            // all-zero block
  for (int64_t i = 32; i < 64; ++i) x[i] = 1e-30f * static_cast<float>(i);  // d underflows f16
  for (int64_t i = 64; i < 96; ++i) x[i] = static_cast<float>(i - 80) + 0.5f;  // ties: with amax = 127,
  x[64] = 127.0f;                                                              // x * id is x exactly
  for (int64_t i = 96; i < 128; ++i) x[i] *= 6e4f;                          // near the f16 limit
  const std::vector<Variant> vs = variants();
  const QuantActs ref = quantize_acts(vs[0].quantize, x, 1, n);
  for (int64_t b = 0; b < n / 32; ++b) {  // the scalar quantizer's own invariants
    float amax = 0;
    for (int64_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    EXPECT_EQ(ref.d[b], f16_to_f32(f32_to_f16(amax / 127.0f))) << "block " << b;
    for (int64_t j = 0; j < 32; ++j) {
      const int64_t i = b * 32 + j;
      EXPECT_LE(std::abs(int{ref.qs[i]}), 127);
      EXPECT_LE(std::fabs(x[i] - ref.qs[i] * (amax / 127.0f)), 0.5f * amax / 127.0f * (1 + 1e-4f)) << "x[" << i << "]";
    }
  }
  for (size_t v = 1; v < vs.size(); ++v) {
    const QuantActs got = quantize_acts(vs[v].quantize, x, 1, n);
    EXPECT_EQ(got.qs, ref.qs) << vs[v].name;
    EXPECT_EQ(0, std::memcmp(got.d.data(), ref.d.data(), ref.d.size() * sizeof(float))) << vs[v].name;
  }
}

TEST(QuantizeRow, Q8_0MatchesGgmlReference) {
  // GGML's weight quantizer rounds half away from zero (roundf) with id = 1 / d.
  std::vector<float> x(32, 0.0f);
  x[0] = -127.0f;
  x[1] = 2.5f;
  x[2] = -3.5f;
  BlockQ8_0 b{};
  kernels::quantize_row_q8_0(x.data(), 32, &b);
  EXPECT_EQ(f16_to_f32(b.d), 1.0f);
  EXPECT_EQ(b.qs[0], -127);
  EXPECT_EQ(b.qs[1], 3);
  EXPECT_EQ(b.qs[2], -4);
  std::vector<float> back(32);
  kernels::dequantize_row_q8_0(&b, 32, back.data());
  EXPECT_EQ(back[1], 3.0f);
  EXPECT_EQ(back[2], -4.0f);
}

TEST(MatmulKernels, TableSelection) {
  for (Isa isa : supported_isas()) {
    const kernels::MatmulKernels& k = kernels::matmul_kernels(isa);
    switch (isa) {
      case Isa::Scalar: EXPECT_EQ(k.f16, kernels::matmul_f16_scalar); break;
      case Isa::Avx2: EXPECT_EQ(k.q8_0, kernels::kMatmulAvx2.q8_0); break;
      case Isa::Avx512:
        EXPECT_EQ(k.f32, kernels::kMatmulAvx512.f32);
        EXPECT_EQ(k.q8_0,
                  cpu_features().avx512vnni ? kernels::matmul_q8_0_avx512vnni : kernels::kMatmulAvx512.q8_0);
        break;
    }
  }
}

// ---- ops::matmul -----------------------------------------------------------------------------------

// Restores the process-wide ISA after a test that changes it.
class OpsMatmul : public ::testing::Test {
 protected:
  void TearDown() override { set_active_isa(saved_); }
  Isa saved_ = active_isa();
};

Tensor weight_tensor(Weights& w) { return Tensor(w.dtype, {w.n_out, w.n_in}, w.bytes.data()); }

// Each ISA through the op, with 1 and 2 threads: close to the reference, identical to each other.
TEST_F(OpsMatmul, EveryIsaEveryDtypeOneAndTwoThreads) {
  ThreadPool pool1(1), pool2(2);
  std::mt19937 rng(2024);
  struct Shape {
    int64_t n_out, n_in, n_tokens;
  };
  const Shape shapes[] = {{257, 4128, 1}, {257, 1056, 17}, {33, 96, 64}, {7, 32, 5}, {100, 320, 2}};
  for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::Q8_0})
    for (const Shape& s : shapes) {
      Weights w = make_weights(dt, s.n_out, s.n_in, rng);
      const Tensor wt = weight_tensor(w);
      std::vector<float> x = random_floats(static_cast<size_t>(s.n_tokens * s.n_in), rng);
      const Tensor xt(DType::F32, {s.n_tokens, s.n_in}, x.data());
      Reference ref = reference(w.values, x, s.n_out, s.n_in, s.n_tokens);
      if (dt == DType::Q8_0)  // activation quantization error: see Q8_0AllVariants (d <= amax / 127 = 1 / 127)
        for (int64_t t = 0; t < s.n_tokens; ++t)
          for (int64_t o = 0; o < s.n_out; ++o) {
            double wsum = 0;
            for (int64_t k = 0; k < s.n_in; ++k) wsum += std::fabs(double{w.values[o * s.n_in + k]});
            ref.mag[t * s.n_out + o] += wsum * 0.57 / 127.0 / kTol;
          }
      for (Isa isa : supported_isas()) {
        set_active_isa(isa);
        const std::string name = case_name(dt, s.n_out, s.n_in, s.n_tokens) + " isa=" + std::string(isa_name(isa));
        Tensor y1 = Tensor::empty(DType::F32, {s.n_tokens, s.n_out});
        Tensor y2 = Tensor::empty(DType::F32, {s.n_tokens, s.n_out});
        ops::matmul(wt, xt, y1, pool1);
        ops::matmul(wt, xt, y2, pool2);
        const std::vector<float> got(y1.data_as<float>(), y1.data_as<float>() + y1.numel());
        expect_close(got, ref, kTol, 0, name);
        EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.nbytes())) << name << ": 1 and 2 threads differ";
      }
    }
}

TEST_F(OpsMatmul, EmptyInnerDimensionGivesZeros) {
  ThreadPool pool(2);
  const Tensor w = Tensor::empty(DType::F32, {3, 0});
  const Tensor x = Tensor::empty(DType::F32, {2, 0});
  std::vector<float> out(6, 1.0f);
  Tensor y(DType::F32, {2, 3}, out.data());
  ops::matmul(w, x, y, pool);
  for (float v : out) EXPECT_EQ(v, 0.0f);
}

// Runs fn, expecting InvalidArgument whose message contains every string in `needles`.
template <typename Fn>
void expect_invalid(Fn fn, const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "no exception";
  } catch (const InvalidArgument& e) {
    for (const std::string& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

TEST(OpsMatmulValidation, RejectsBadShapesDtypesAndAliasing) {
  ThreadPool pool(1);
  const Tensor w = Tensor::empty(DType::F32, {8, 64});
  const Tensor x = Tensor::empty(DType::F32, {2, 64});
  Tensor y = Tensor::empty(DType::F32, {2, 8});
  const Tensor x_bad = Tensor::empty(DType::F32, {2, 63});
  expect_invalid([&] { ops::matmul(w, x_bad, y, pool); }, {"(2, 63)", "63", "64"});
  Tensor y_bad = Tensor::empty(DType::F32, {2, 9});
  expect_invalid([&] { ops::matmul(w, x, y_bad, pool); }, {"(2, 9)", "(2, 8)"});
  Tensor y_3d = Tensor::empty(DType::F32, {1, 2, 8});
  expect_invalid([&] { ops::matmul(w, x, y_3d, pool); }, {"3 dims", "(1, 2, 8)"});
  const Tensor x_f16 = Tensor::empty(DType::F16, {2, 64});
  expect_invalid([&] { ops::matmul(w, x_f16, y, pool); }, {"input x", "f16"});
  Tensor y_bf16 = Tensor::empty(DType::BF16, {2, 8});
  expect_invalid([&] { ops::matmul(w, x, y_bf16, pool); }, {"output y", "bf16"});
  const Tensor w_q4 = Tensor::empty(DType::Q4_0, {8, 64});
  expect_invalid([&] { ops::matmul(w_q4, x, y, pool); }, {"q4_0"});
  // y overlapping x: both views of one buffer.
  std::vector<float> buf(2 * 64 + 2 * 8);
  const Tensor xa(DType::F32, {2, 64}, buf.data());
  Tensor ya(DType::F32, {2, 8}, buf.data() + 100);
  expect_invalid([&] { ops::matmul(w, xa, ya, pool); }, {"output y", "overlaps", "input x"});
  const Tensor w_gpu(DType::F32, {8, 64}, const_cast<void*>(w.data()), nullptr, Device::CUDA);
  expect_invalid([&] { ops::matmul(w_gpu, x, y, pool); }, {"not on the CPU"});
}

// ---- ops::get_rows ---------------------------------------------------------------------------------

TEST(OpsGetRows, DequantizesEveryDtype) {
  std::mt19937 rng(8);
  const int64_t n_rows = 5, n_cols = 96;
  const std::vector<int32_t> ids = {4, 0, 4, 2};
  for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::Q8_0}) {
    Weights table = make_weights(dt, n_rows, n_cols, rng);
    Tensor out = Tensor::empty(DType::F32, {static_cast<int64_t>(ids.size()), n_cols});
    ops::get_rows(weight_tensor(table), ids.data(), static_cast<int64_t>(ids.size()), out);
    for (size_t i = 0; i < ids.size(); ++i)
      for (int64_t c = 0; c < n_cols; ++c)
        ASSERT_EQ(out.data_as<float>()[i * n_cols + c], table.values[ids[i] * n_cols + c])
            << dtype_name(dt) << " id " << ids[i] << " col " << c;
  }
}

TEST(OpsGetRows, RejectsOutOfRangeIdsAndBadShapes) {
  const Tensor table = Tensor::empty(DType::F16, {5, 32});
  Tensor out = Tensor::empty(DType::F32, {2, 32});
  const std::vector<int32_t> too_big = {1, 7};
  expect_invalid([&] { ops::get_rows(table, too_big.data(), 2, out); }, {"id 7", "index 1", "[0, 5)"});
  const std::vector<int32_t> negative = {-1, 0};
  expect_invalid([&] { ops::get_rows(table, negative.data(), 2, out); }, {"id -1", "[0, 5)"});
  const std::vector<int32_t> ok = {0, 1, 2};
  expect_invalid([&] { ops::get_rows(table, ok.data(), 3, out); }, {"(2, 32)", "(3, 32)"});
  const Tensor table_q4 = Tensor::empty(DType::Q4_0, {5, 32});
  expect_invalid([&] { ops::get_rows(table_q4, ok.data(), 2, out); }, {"q4_0"});
}

}  // namespace
}  // namespace contrail
