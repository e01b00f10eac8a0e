// Attention: the scalar kernel and the ops entry against hand-computed cases, every SIMD kernel
// against the scalar kernel, the ops entry (per active ISA) against an independent double-precision
// reference built on an explicit mask, and argument validation.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "contrail/core/cpu_features.h"
#include "contrail/core/error.h"
#include "contrail/core/tensor.h"
#include "contrail/core/thread_pool.h"
#include "contrail/kernels/attention.h"
#include "contrail/kernels/quantize.h"
#include "contrail/ops/attention.h"
#include "kernels/isa_kernels.h"
#include "test_util.h"

namespace contrail {
namespace {

using test::ActiveIsaGuard;
using test::expect_invalid;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<float> random_vec(size_t n, float lo, float hi, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
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

void expect_close(const std::vector<float>& a, const std::vector<float>& b, float atol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_LE(std::fabs(a[i] - b[i]), atol) << "at index " << i << ": " << a[i] << " vs " << b[i];
}

struct Dims {
  int64_t n_tokens, n_head, n_kv, n_head_kv, head_dim;
};

// Independent reference: double precision, every kv row scored, then an explicit mask
// (row p visible iff p <= pos and, with a window, pos - p < window) sets hidden rows to -inf.
std::vector<float> reference_attention(const std::vector<float>& q, const std::vector<float>& k,
                                       const std::vector<float>& v, const Dims& d, const std::vector<int32_t>& pos,
                                       const ops::AttentionParams& p) {
  std::vector<float> out(q.size());  // (n_tokens, n_head, head_dim)
  const int64_t group = d.n_head / d.n_head_kv;
  for (int64_t t = 0; t < d.n_tokens; ++t) {
    for (int64_t h = 0; h < d.n_head; ++h) {
      const float* qr = &q[(t * d.n_head + h) * d.head_dim];
      std::vector<double> s(d.n_kv);
      double max = -std::numeric_limits<double>::infinity();
      for (int64_t r = 0; r < d.n_kv; ++r) {
        const float* kr = &k[(r * d.n_head_kv + h / group) * d.head_dim];
        double dot = 0;
        for (int64_t i = 0; i < d.head_dim; ++i) dot += static_cast<double>(qr[i]) * kr[i];
        dot *= p.scale;
        if (p.softcap > 0) dot = p.softcap * std::tanh(dot / p.softcap);
        const bool visible = r <= pos[t] && (p.window == 0 || pos[t] - r < p.window);
        s[r] = visible ? dot : -std::numeric_limits<double>::infinity();
        max = std::max(max, s[r]);
      }
      double sum = 0;
      for (double& x : s) sum += (x = std::exp(x - max));
      for (int64_t i = 0; i < d.head_dim; ++i) {
        double acc = 0;
        for (int64_t r = 0; r < d.n_kv; ++r)
          if (s[r] > 0) acc += s[r] / sum * v[(r * d.n_head_kv + h / group) * d.head_dim + i];
        out[(t * d.n_head + h) * d.head_dim + i] = static_cast<float>(acc);
      }
    }
  }
  return out;
}

// ---- hand-computed cases -------------------------------------------------------------------------

TEST(Attention, ScalarKernelTwoKeysHandComputed) {
  // q = [1, 0]; k0 = [0, 0] (score 0), k1 = [2, 0] (score 2 * 0.5 = 1); v0 = [1, 0], v1 = [0, 1].
  const std::vector<float> q = {1, 0}, k = {0, 0, 2, 0}, v = {1, 0, 0, 1};
  std::vector<float> scores(2), out(2);
  kernels::attend_row_scalar(q.data(), k.data(), v.data(), 2, 2, 2, 0.5f, 0.0f, scores.data(), out.data());
  const double e = std::exp(1.0);
  expect_close(out, {float(1 / (1 + e)), float(e / (1 + e))}, 1e-7f);
  // softcap 0.5: the score 1 becomes 0.5 * tanh(2).
  kernels::attend_row_scalar(q.data(), k.data(), v.data(), 2, 2, 2, 0.5f, 0.5f, scores.data(), out.data());
  const double ec = std::exp(0.5 * std::tanh(2.0));
  expect_close(out, {float(1 / (1 + ec)), float(ec / (1 + ec))}, 1e-7f);
}

TEST(Attention, EqualScoresAverageV) {
  // Identical keys: uniform weights, the output is the mean of the value rows.
  const std::vector<float> q = {0.3f, -1.0f, 2.0f}, k = {1, 2, 3, 1, 2, 3, 1, 2, 3}, v = {1, 0, 9, 2, 3, 0, 6, 0, 0};
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    std::vector<float> scores(3), out(3);
    kernels::attend_row_kernel(isa)(q.data(), k.data(), v.data(), 3, 3, 3, 0.7f, 0.0f, scores.data(), out.data());
    expect_close(out, {3, 1, 3}, 2e-6f);
  }
}

TEST(Attention, OneKvRowReturnsVWithGqaMapping) {
  // With a single visible row the softmax weight is exactly 1: out[t, h] = v[0, h / group].
  ActiveIsaGuard guard;
  ThreadPool pool(2);
  std::mt19937 rng(7);
  for (int64_t n_head_kv : {4, 2, 1}) {
    const Dims d{3, 4, 1, n_head_kv, 16};
    const std::vector<float> q = random_vec(d.n_tokens * d.n_head * d.head_dim, -1, 1, rng);
    const std::vector<float> k = random_vec(d.n_kv * d.n_head_kv * d.head_dim, -1, 1, rng);
    const std::vector<float> v = random_vec(d.n_kv * d.n_head_kv * d.head_dim, -1, 1, rng);
    const std::vector<int32_t> pos = {0, 0, 0};
    for (Isa isa : supported_isas()) {
      SCOPED_TRACE(fmt::format("{} n_head_kv={}", isa_name(isa), n_head_kv));
      set_active_isa(isa);
      Tensor out = Tensor::empty(DType::F32, {d.n_tokens, d.n_head, d.head_dim});
      ops::AttentionParams p;
      p.scale = 0.25f;
      ops::attention(tensor_from({d.n_tokens, d.n_head, d.head_dim}, q), tensor_from({1, n_head_kv, 16}, k),
                     tensor_from({1, n_head_kv, 16}, v), pos.data(), p, out, pool);
      const std::vector<float> got = values_of(out);
      for (int64_t t = 0; t < d.n_tokens; ++t)
        for (int64_t h = 0; h < d.n_head; ++h)
          for (int64_t i = 0; i < d.head_dim; ++i)
            ASSERT_EQ(got[(t * d.n_head + h) * 16 + i], v[(h / (d.n_head / n_head_kv)) * 16 + i])
                << "t=" << t << " h=" << h << " i=" << i;
    }
  }
}

TEST(Attention, MaskHidesFutureAndOutOfWindowRows) {
  // Hidden rows hold NaN: any read of them would poison the output.
  ActiveIsaGuard guard;
  ThreadPool pool(1);
  const int64_t hd = 2;
  const std::vector<float> q = {1, 0, 1, 0};                 // (2 tokens, 1 head, 2)
  const std::vector<float> k = {0, 0, 2, 0, kNaN, kNaN, kNaN, kNaN};  // (4, 1, 2): rows 2, 3 in the future
  const std::vector<float> v = {1, 0, 0, 1, kNaN, kNaN, kNaN, kNaN};
  const std::vector<int32_t> pos = {0, 1};
  // Window 2 at position 3 sees rows 2 and 3 only: rows 0 and 1 are NaN.
  const std::vector<float> kw = {kNaN, kNaN, kNaN, kNaN, 0, 0, 2, 0}, vw = {kNaN, kNaN, kNaN, kNaN, 1, 0, 0, 1};
  const int32_t pos_w[1] = {3};
  const double e = std::exp(1.0);
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    set_active_isa(isa);
    ops::AttentionParams p;
    p.scale = 0.5f;
    Tensor out = Tensor::empty(DType::F32, {2, 1, hd});
    ops::attention(tensor_from({2, 1, hd}, q), tensor_from({4, 1, hd}, k), tensor_from({4, 1, hd}, v), pos.data(), p,
                   out, pool);
    // Token 0 sees row 0 only; token 1 sees rows 0 (score 0) and 1 (score 1).
    expect_close(values_of(out), {1, 0, float(1 / (1 + e)), float(e / (1 + e))}, 1e-6f);

    p.window = 2;
    Tensor out_w = Tensor::empty(DType::F32, {1, 1, hd});
    ops::attention(tensor_from({1, 1, hd}, {1, 0}), tensor_from({4, 1, hd}, kw), tensor_from({4, 1, hd}, vw), pos_w, p,
                   out_w, pool);
    expect_close(values_of(out_w), {float(1 / (1 + e)), float(e / (1 + e))}, 1e-6f);
  }
}

// ---- random shapes: SIMD kernels vs scalar kernel, ops entry vs double reference ---------------------

TEST(Attention, RandomShapesEveryIsa) {
  ActiveIsaGuard guard;
  ThreadPool pool(2);
  std::mt19937 rng(2024);
  struct Gqa {
    int64_t n_head, n_head_kv;
  };
  int n_cases = 0;
  // The model head sizes, plus 8 (stories260K) and 20, which exercise the vector-tail paths.
  for (int64_t head_dim : {8, 16, 20, 32, 64, 128, 256}) {
    for (Gqa g : {Gqa{4, 4}, Gqa{4, 2}, Gqa{8, 1}}) {
      for (int64_t window : {0, 4}) {
        for (float softcap : {0.0f, 1.0f}) {
          const int64_t n_tokens = std::uniform_int_distribution<int64_t>(1, 17)(rng);
          const int64_t n_kv = std::uniform_int_distribution<int64_t>(n_tokens, 300)(rng);
          const Dims d{n_tokens, g.n_head, n_kv, g.n_head_kv, head_dim};
          SCOPED_TRACE(fmt::format("head_dim={} heads={}/{} n_tokens={} n_kv={} window={} softcap={}", head_dim,
                                   g.n_head, g.n_head_kv, n_tokens, n_kv, window, softcap));
          const std::vector<float> q = random_vec(n_tokens * g.n_head * head_dim, -3, 3, rng);
          const std::vector<float> k = random_vec(n_kv * g.n_head_kv * head_dim, -1, 1, rng);
          const std::vector<float> v = random_vec(n_kv * g.n_head_kv * head_dim, -1, 1, rng);
          std::vector<int32_t> pos(n_tokens);  // a batch at the end of the history ...
          for (int64_t t = 0; t < n_tokens; ++t) pos[t] = static_cast<int32_t>(n_kv - n_tokens + t);
          if (++n_cases % 3 == 0)  // ... or arbitrary positions in arbitrary order
            for (int32_t& x : pos) x = std::uniform_int_distribution<int32_t>(0, static_cast<int32_t>(n_kv - 1))(rng);
          ops::AttentionParams p;
          p.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
          p.window = window;
          p.softcap = softcap;
          const std::vector<float> want = reference_attention(q, k, v, d, pos, p);

          // Kernels called directly on single rows (query head 0 of each token, kv head 0).
          std::vector<float> scores(n_kv), row_want(head_dim), row_got(head_dim);
          for (int64_t t = 0; t < n_tokens; ++t) {
            const int64_t lo = window > 0 ? std::max<int64_t>(0, pos[t] - window + 1) : 0;
            const int64_t stride = g.n_head_kv * head_dim;
            const float* qr = &q[t * g.n_head * head_dim];
            kernels::attend_row_scalar(qr, &k[lo * stride], &v[lo * stride], stride, head_dim, pos[t] - lo + 1,
                                       p.scale, softcap, scores.data(), row_want.data());
            for (Isa isa : supported_isas()) {
              SCOPED_TRACE(fmt::format("kernel {} t={}", isa_name(isa), t));
              kernels::attend_row_kernel(isa)(qr, &k[lo * stride], &v[lo * stride], stride, head_dim,
                                              pos[t] - lo + 1, p.scale, softcap, scores.data(), row_got.data());
              expect_close(row_got, row_want, 1e-5f);
            }
          }

          // The ops entry, whole tensors, per active ISA.
          const Tensor tq = tensor_from({n_tokens, g.n_head, head_dim}, q);
          const Tensor tk = tensor_from({n_kv, g.n_head_kv, head_dim}, k);
          const Tensor tv = tensor_from({n_kv, g.n_head_kv, head_dim}, v);
          for (Isa isa : supported_isas()) {
            SCOPED_TRACE(fmt::format("ops {}", isa_name(isa)));
            set_active_isa(isa);
            Tensor out = Tensor::empty(DType::F32, {n_tokens, g.n_head, head_dim});
            ops::attention(tq, tk, tv, pos.data(), p, out, pool);
            expect_close(values_of(out), want, 2e-5f);
          }
        }
      }
    }
  }
}

// ---- validation ----------------------------------------------------------------------------------

TEST(Attention, RejectsBadArguments) {
  ThreadPool pool(1);
  const Tensor q = Tensor::empty(DType::F32, {2, 4, 16});
  const Tensor k = Tensor::empty(DType::F32, {10, 2, 16}), v = Tensor::empty(DType::F32, {10, 2, 16});
  Tensor out = Tensor::empty(DType::F32, {2, 4, 16});
  ops::AttentionParams p;
  p.scale = 0.25f;
  const int32_t ok[2] = {3, 9}, beyond[2] = {3, 10}, neg[2] = {-1, 0};

  ops::attention(q, k, v, ok, p, out, pool);  // the valid call the others vary
  expect_invalid([&] { ops::attention(q, k, v, beyond, p, out, pool); }, {"attention", "pos[1] = 10", "n_kv 10"});
  expect_invalid([&] { ops::attention(q, k, v, neg, p, out, pool); }, {"attention", "pos[0] = -1", "negative"});

  const Tensor k3 = Tensor::empty(DType::F32, {10, 3, 16}), v3 = Tensor::empty(DType::F32, {10, 3, 16});
  expect_invalid([&] { ops::attention(q, k3, v3, ok, p, out, pool); }, {"attention", "n_head 4", "n_head_kv 3"});
  const Tensor k8 = Tensor::empty(DType::F32, {10, 2, 8});
  expect_invalid([&] { ops::attention(q, k8, k8, ok, p, out, pool); }, {"attention", "head_dim 8 != 16"});
  const Tensor v9 = Tensor::empty(DType::F32, {9, 2, 16});
  expect_invalid([&] { ops::attention(q, k, v9, ok, p, out, pool); }, {"attention", "v", "(9, 2, 16)", "(10, 2, 16)"});
  Tensor out_bad = Tensor::empty(DType::F32, {2, 4, 8});
  expect_invalid([&] { ops::attention(q, k, v, ok, p, out_bad, pool); }, {"attention", "out", "(2, 4, 8)"});
  const Tensor kh = Tensor::empty(DType::F16, {10, 2, 16});
  expect_invalid([&] { ops::attention(q, kh, v, ok, p, out, pool); }, {"attention", "k", "f16", "f32"});
  const Tensor q2 = Tensor::empty(DType::F32, {2, 64});
  expect_invalid([&] { ops::attention(q2, k, v, ok, p, out, pool); }, {"attention", "q", "(2, 64)", "3 dims"});
  Tensor q_alias(DType::F32, {2, 4, 16}, const_cast<void*>(q.data()));
  expect_invalid([&] { ops::attention(q, k, v, ok, p, q_alias, pool); }, {"attention", "overlaps"});

  ops::AttentionParams bad = p;
  bad.scale = 0.0f;
  expect_invalid([&] { ops::attention(q, k, v, ok, bad, out, pool); }, {"attention", "scale 0"});
  bad = p;
  bad.window = -2;
  expect_invalid([&] { ops::attention(q, k, v, ok, bad, out, pool); }, {"attention", "window -2"});
  bad = p;
  bad.softcap = -1.0f;
  expect_invalid([&] { ops::attention(q, k, v, ok, bad, out, pool); }, {"attention", "softcap -1"});
}

// ---- paged attention ------------------------------------------------------------------------------

// Several sequences whose K/V rows are scattered over a shared pool in shuffled blocks: every
// token's output equals the double-precision reference on that sequence's contiguous K/V, for
// every ISA, block sizes that do and do not divide the lengths, windows and soft-capping.
TEST(PagedAttention, MatchesTheReferenceOnScatteredBlocks) {
  ActiveIsaGuard guard;
  std::mt19937 rng(777);
  ThreadPool pool(2);
  for (int64_t block_size : {1, 3, 16}) {
    for (int64_t window : {0, 5}) {
      for (float softcap : {0.0f, 1.5f}) {
        const int64_t n_head = 4, n_head_kv = 2, head_dim = 20;
        const int64_t kv_stride = n_head_kv * head_dim;
        const int n_seqs = 3;
        // Sequence s has n_kv[s] positions; its batch tokens are its last n_new[s] positions
        // (a prefill chunk or a single decode token), or arbitrary positions for the last one.
        std::vector<int64_t> n_kv(n_seqs), n_new(n_seqs);
        int64_t blocks_needed = 0;
        for (int s = 0; s < n_seqs; ++s) {
          n_kv[s] = std::uniform_int_distribution<int64_t>(1, 70)(rng);
          n_new[s] = s == 1 ? 1 : std::uniform_int_distribution<int64_t>(1, n_kv[s])(rng);
          blocks_needed += (n_kv[s] + block_size - 1) / block_size;
        }
        const int64_t n_blocks = blocks_needed + 5;  // some blocks belong to nobody
        std::vector<int32_t> ids(static_cast<size_t>(n_blocks));
        std::iota(ids.begin(), ids.end(), 0);
        std::shuffle(ids.begin(), ids.end(), rng);
        std::vector<float> k_pool = random_vec(n_blocks * block_size * kv_stride, -1, 1, rng);
        std::vector<float> v_pool = random_vec(n_blocks * block_size * kv_stride, -1, 1, rng);
        std::vector<std::vector<int32_t>> tables(n_seqs);
        std::vector<ops::PagedSequence> seqs(n_seqs);
        std::vector<int32_t> seq_of, pos;
        size_t next = 0;
        for (int s = 0; s < n_seqs; ++s) {
          for (int64_t b = 0; b < (n_kv[s] + block_size - 1) / block_size; ++b) tables[s].push_back(ids[next++]);
          seqs[s] = {tables[s], n_kv[s]};
          for (int64_t t = n_kv[s] - n_new[s]; t < n_kv[s]; ++t) {
            seq_of.push_back(s);
            pos.push_back(s == 2 ? std::uniform_int_distribution<int32_t>(0, static_cast<int32_t>(n_kv[s] - 1))(rng)
                                 : static_cast<int32_t>(t));
          }
        }
        const int64_t n_tokens = static_cast<int64_t>(pos.size());
        const std::vector<float> q = random_vec(n_tokens * n_head * head_dim, -3, 3, rng);
        ops::AttentionParams p;
        p.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
        p.window = window;
        p.softcap = softcap;

        // The reference, one token at a time on its sequence's K/V gathered into positions.
        std::vector<float> want(q.size());
        for (int64_t t = 0; t < n_tokens; ++t) {
          const int s = seq_of[t];
          std::vector<float> k(n_kv[s] * kv_stride), v(n_kv[s] * kv_stride);
          for (int64_t at = 0; at < n_kv[s]; ++at) {
            const int64_t row = tables[s][at / block_size] * block_size + at % block_size;
            std::copy_n(&k_pool[row * kv_stride], kv_stride, &k[at * kv_stride]);
            std::copy_n(&v_pool[row * kv_stride], kv_stride, &v[at * kv_stride]);
          }
          const std::vector<float> qt(q.begin() + t * n_head * head_dim, q.begin() + (t + 1) * n_head * head_dim);
          const std::vector<float> o =
              reference_attention(qt, k, v, Dims{1, n_head, n_kv[s], n_head_kv, head_dim}, {pos[t]}, p);
          std::copy(o.begin(), o.end(), want.begin() + t * n_head * head_dim);
        }
        const Tensor tq = tensor_from({n_tokens, n_head, head_dim}, q);
        const Tensor tk = tensor_from({n_blocks * block_size, n_head_kv, head_dim}, k_pool);
        const Tensor tv = tensor_from({n_blocks * block_size, n_head_kv, head_dim}, v_pool);
        for (Isa isa : supported_isas()) {
          SCOPED_TRACE(fmt::format("{} block_size={} window={} softcap={}", isa_name(isa), block_size, window, softcap));
          set_active_isa(isa);
          Tensor out = Tensor::empty(DType::F32, {n_tokens, n_head, head_dim});
          ops::paged_attention(tq, tk, tv, block_size, seqs, seq_of.data(), pos.data(), p, out, pool);
          expect_close(values_of(out), want, 2e-5f);
        }
      }
    }
  }
}

// f16 and q8_0 pools: the result equals the reference on the values the pool holds (each row
// decoded by the scalar dequantizers), and stays close to the f32 result.
TEST(PagedAttention, QuantizedPoolsMatchTheReferenceOnTheirValues) {
  ActiveIsaGuard guard;
  std::mt19937 rng(4242);
  ThreadPool pool(2);
  const int64_t n_head = 4, n_head_kv = 2, head_dim = 64, bs = 5, kv_dim = n_head_kv * head_dim;
  const int64_t n_kv = 37, n_blocks = 9;
  std::vector<int32_t> table{7, 2, 8, 0, 5, 1, 3, 6};  // 8 blocks of 5 cover 37 positions
  const std::vector<float> kf = random_vec(n_blocks * bs * kv_dim, -1, 1, rng);
  const std::vector<float> vf = random_vec(n_blocks * bs * kv_dim, -1, 1, rng);
  const int64_t n_tokens = 4;
  const std::vector<float> q = random_vec(n_tokens * n_head * head_dim, -3, 3, rng);
  const std::vector<int32_t> seq_of(n_tokens, 0), pos{33, 34, 35, 36};
  const ops::PagedSequence seqs[1] = {{table, n_kv}};
  for (DType dt : {DType::F16, DType::Q8_0}) {
    Tensor kp = Tensor::empty(dt, {n_blocks * bs, n_head_kv, head_dim});
    Tensor vp = Tensor::empty(dt, {n_blocks * bs, n_head_kv, head_dim});
    const size_t rb = row_bytes(dt, kv_dim);
    std::vector<float> kd(kf.size()), vd(vf.size());  // what the pools hold, decoded
    for (int64_t r = 0; r < n_blocks * bs; ++r) {
      ops::store_kv_row(&kf[r * kv_dim], kv_dim, dt, static_cast<char*>(kp.data()) + r * rb);
      ops::store_kv_row(&vf[r * kv_dim], kv_dim, dt, static_cast<char*>(vp.data()) + r * rb);
      kernels::dequantize_row(dt, static_cast<const char*>(kp.data()) + r * rb, kv_dim, &kd[r * kv_dim]);
      kernels::dequantize_row(dt, static_cast<const char*>(vp.data()) + r * rb, kv_dim, &vd[r * kv_dim]);
    }
    for (int64_t window : {0, 6}) {
      ops::AttentionParams p;
      p.scale = 0.125f;
      p.window = window;
      // Reference: gather the sequence's decoded rows in position order.
      std::vector<float> k(n_kv * kv_dim), v(n_kv * kv_dim), kx(n_kv * kv_dim), vx(n_kv * kv_dim);
      for (int64_t at = 0; at < n_kv; ++at) {
        const int64_t row = table[at / bs] * bs + at % bs;
        std::copy_n(&kd[row * kv_dim], kv_dim, &k[at * kv_dim]);
        std::copy_n(&vd[row * kv_dim], kv_dim, &v[at * kv_dim]);
        std::copy_n(&kf[row * kv_dim], kv_dim, &kx[at * kv_dim]);
        std::copy_n(&vf[row * kv_dim], kv_dim, &vx[at * kv_dim]);
      }
      const Dims d{n_tokens, n_head, n_kv, n_head_kv, head_dim};
      const std::vector<float> want = reference_attention(q, k, v, d, pos, p);
      const std::vector<float> exact = reference_attention(q, kx, vx, d, pos, p);
      const Tensor tq = tensor_from({n_tokens, n_head, head_dim}, q);
      for (Isa isa : supported_isas()) {
        SCOPED_TRACE(fmt::format("{} {} window={}", dtype_name(dt), isa_name(isa), window));
        set_active_isa(isa);
        Tensor out = Tensor::empty(DType::F32, {n_tokens, n_head, head_dim});
        ops::paged_attention(tq, kp, vp, bs, seqs, seq_of.data(), pos.data(), p, out, pool);
        expect_close(values_of(out), want, 2e-5f);
        expect_close(values_of(out), exact, dt == DType::F16 ? 2e-3f : 3e-2f);
      }
    }
  }
  const Tensor q3 = Tensor::empty(DType::F32, {1, 4, 16});
  Tensor out = Tensor::empty(DType::F32, {1, 4, 16});
  const Tensor kf16 = Tensor::empty(DType::F16, {10, 2, 16}), kf32 = Tensor::empty(DType::F32, {10, 2, 16});
  const int32_t so[1] = {0}, ps[1] = {0};
  const ops::PagedSequence one[1] = {{table, 1}};
  ops::AttentionParams p;
  p.scale = 0.25f;
  expect_invalid([&] { ops::paged_attention(q3, kf16, kf32, 5, one, so, ps, p, out, pool); },
                 {"v_pool has dtype f32 but k_pool f16"});
  expect_invalid([&] { ops::store_kv_row(nullptr, 16, DType::Q8_0, nullptr); }, {"q8_0", "multiple of 32", "16"});
  expect_invalid([&] { ops::store_kv_row(nullptr, 16, DType::BF16, nullptr); }, {"bf16", "not supported"});
}

TEST(PagedAttention, RejectsBadTablesAndPositions) {
  ThreadPool pool(1);
  const Tensor q = Tensor::empty(DType::F32, {2, 4, 16});
  const Tensor k = Tensor::empty(DType::F32, {12, 2, 16}), v = Tensor::empty(DType::F32, {12, 2, 16});
  Tensor out = Tensor::empty(DType::F32, {2, 4, 16});
  ops::AttentionParams p;
  p.scale = 0.25f;
  const std::vector<int32_t> table{2, 0}, bad_table{2, 3};  // block_size 4: blocks 0..2
  const int32_t seq_of[2] = {0, 0}, pos[2] = {5, 6}, beyond[2] = {5, 7}, other[2] = {0, 1};
  const ops::PagedSequence ok[1] = {{table, 7}};
  ops::paged_attention(q, k, v, 4, ok, seq_of, pos, p, out, pool);  // the valid call the others vary
  expect_invalid([&] { ops::paged_attention(q, k, v, 4, ok, seq_of, beyond, p, out, pool); },
                 {"paged_attention", "pos[1] = 7", "n_kv 7"});
  expect_invalid([&] { ops::paged_attention(q, k, v, 4, ok, other, pos, p, out, pool); },
                 {"paged_attention", "seq_of[1] = 1", "[0, 1)"});
  const ops::PagedSequence bad[1] = {{bad_table, 7}};
  expect_invalid([&] { ops::paged_attention(q, k, v, 4, bad, seq_of, pos, p, out, pool); },
                 {"paged_attention", "block 1 is 3", "[0, 3)"});
  const ops::PagedSequence short_table[1] = {{std::span<const int32_t>(table).first(1), 7}};
  expect_invalid([&] { ops::paged_attention(q, k, v, 4, short_table, seq_of, pos, p, out, pool); },
                 {"paged_attention", "n_kv 7", "needs 2"});
  expect_invalid([&] { ops::paged_attention(q, k, v, 5, ok, seq_of, pos, p, out, pool); },
                 {"paged_attention", "block_size 5", "12 pool rows"});
}

}  // namespace
}  // namespace contrail
