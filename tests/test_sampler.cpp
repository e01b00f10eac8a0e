// Sampler tests. Oracles are independent of the implementation: a Python reference of
// xoshiro256**/splitmix64, std::exp softmax, full sorts with the documented tie rule, and
// hand-computed candidate sets and penalised logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "contrail/core/error.h"
#include "contrail/sampling/rng.h"
#include "contrail/sampling/sampler.h"
#include "sampling/det_exp.h"

namespace contrail {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Parameters with every stage off except the ones a test turns on.
SamplingParams plain(float temperature = 1.0f) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.0f;
  p.frequency_penalty = 0.0f;
  p.presence_penalty = 0.0f;
  p.penalty_last_n = 64;
  p.seed = 1234;
  return p;
}

// Deterministic test logits in [-scale, scale).
std::vector<float> random_logits(size_t n, uint64_t seed, float scale) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>((2.0 * rng.uniform() - 1.0) * scale);
  return v;
}

int32_t naive_argmax(const std::vector<float>& v) {
  int32_t best = 0;
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[static_cast<size_t>(best)]) best = static_cast<int32_t>(i);
  return best;
}

// Ids ordered by logit descending, lower id first on ties (the documented candidate order).
std::vector<int32_t> ranked(const std::vector<float>& v) {
  std::vector<int32_t> ids(v.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return v[a] > v[b]; });
  return ids;
}

// softmax(v / t) in double with std::exp.
std::vector<double> softmax(const std::vector<float>& v, double t) {
  const double m = *std::max_element(v.begin(), v.end());
  std::vector<double> p(v.size());
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += p[i] = std::exp((v[i] - m) / t);
  for (double& x : p) x /= s;
  return p;
}

// Token counts of `n` draws (each sample() is not accepted, so penalties see no history).
std::vector<int64_t> histogram(Sampler& s, const std::vector<float>& logits, int n) {
  std::vector<int64_t> counts(logits.size(), 0);
  for (int i = 0; i < n; ++i) ++counts[static_cast<size_t>(s.sample(logits))];
  return counts;
}

// The set of tokens drawn at least once.
std::set<int32_t> drawn(const std::vector<int64_t>& counts) {
  std::set<int32_t> s;
  for (size_t i = 0; i < counts.size(); ++i)
    if (counts[i] > 0) s.insert(static_cast<int32_t>(i));
  return s;
}

// ---- RNG ------------------------------------------------------------------------------------------

TEST(Rng, MatchesReferenceXoshiro256StarStar) {
  // From an independent Python implementation of splitmix64 + xoshiro256** (its splitmix64 gives
  // the published 6457827717110365317, 3203168211198807973, ... for seed 1234567).
  struct Case {
    uint64_t seed;
    uint64_t first[4];
    uint64_t at_999;
  };
  const Case cases[] = {
      {0, {0x99ec5f36cb75f2b4ull, 0xbf6e1f784956452aull, 0x1a5f849d4933e6e0ull, 0x6aa594f1262d2d2cull}, 0x7aac8c483a2edd2full},
      {0xC0FFEE, {0x120e99a6dde4a550ull, 0x8f989ef97733d4b4ull, 0xf0a28eb2e4fd367bull, 0x50c29bfe8734f5d2ull},
       0x35707cfe7898c75bull},
  };
  for (const Case& c : cases) {
    Rng rng(c.seed);
    for (uint64_t want : c.first) EXPECT_EQ(rng.next_u64(), want) << "seed " << c.seed;
    for (int i = 4; i < 999; ++i) rng.next_u64();
    EXPECT_EQ(rng.next_u64(), c.at_999) << "seed " << c.seed;
  }
}

TEST(Rng, UniformIsTop53BitsTimesTwoToMinus53) {
  Rng a(99), b(99);
  for (int i = 0; i < 10000; ++i) {
    const double u = a.uniform();
    EXPECT_EQ(u, std::ldexp(static_cast<double>(b.next_u64() >> 11), -53));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
  a.reseed(99);
  b.reseed(99);
  EXPECT_EQ(a.next_u64(), b.next_u64());
}

TEST(DetExp, MatchesStdExp) {
  using sampling_detail::det_exp;
  EXPECT_EQ(det_exp(0.0), 1.0);
  EXPECT_EQ(det_exp(-std::numeric_limits<double>::infinity()), 0.0);
  EXPECT_EQ(det_exp(-800.0), 0.0);
  EXPECT_TRUE(std::isinf(det_exp(710.0)));
  EXPECT_TRUE(std::isnan(det_exp(std::nan(""))));
  double worst = 0;
  for (double x = -708.0; x <= 709.0; x += 0.0137) worst = std::max(worst, std::abs(det_exp(x) / std::exp(x) - 1.0));
  for (double x = -1.0; x <= 1.0; x += 1e-4) worst = std::max(worst, std::abs(det_exp(x) / std::exp(x) - 1.0));
  EXPECT_LT(worst, 1e-15);
}

// ---- greedy / argmax ----------------------------------------------------------------------------

TEST(Argmax, LowestIdWinsTiesAndNaNIsSkipped) {
  EXPECT_EQ(argmax(std::vector<float>{1, 3, 3, 2}), 1);
  EXPECT_EQ(argmax(std::vector<float>{-kInf, -kInf}), 0);
  const float nan = std::nanf("");
  EXPECT_EQ(argmax(std::vector<float>{nan, 1, 5, nan, 5}), 2);
  EXPECT_EQ(argmax(std::vector<float>{nan, nan}), 0);
  EXPECT_THROW(argmax(std::span<const float>()), InvalidArgument);
}

TEST(Sampler, GreedyIsArgmaxWithLowestIdTieBreak) {
  SamplingParams p;  // defaults, greedy: top-k/p/min-p must not matter
  p.temperature = 0;
  Sampler s(p, 1000);
  for (uint64_t trial = 0; trial < 50; ++trial) {
    std::vector<float> v = random_logits(1000, trial, 4.0f);
    if (trial % 2) {  // plant a tie for the maximum; the lower id must win
      const int32_t hi = naive_argmax(v);
      const size_t lo = static_cast<size_t>(trial * 13 % 1000);
      v[lo] = v[static_cast<size_t>(hi)];
    }
    EXPECT_EQ(s.sample(v), naive_argmax(v)) << "trial " << trial;
  }
}

TEST(Sampler, TopK1IsArgmaxAtAnyTemperature) {
  for (float t : {0.05f, 1.0f, 7.0f, 1000.0f}) {
    SamplingParams p = plain(t);
    p.top_k = 1;
    Sampler s(p, 3000);
    for (uint64_t trial = 0; trial < 30; ++trial) {
      std::vector<float> v = random_logits(3000, 100 + trial, 2.0f);
      if (trial % 3 == 0) v[2999] = v[static_cast<size_t>(naive_argmax(v))];  // a tie: lower id wins
      EXPECT_EQ(s.sample(v), naive_argmax(v)) << "temperature " << t << " trial " << trial;
    }
  }
}

// ---- the draw -----------------------------------------------------------------------------------

TEST(Sampler, SameSeedSameDrawsDifferentSeedDifferent) {
  const std::vector<float> v = random_logits(50, 7, 1.0f);
  SamplingParams p = plain(1.0f);
  Sampler a(p, 50), b(p, 50);
  p.seed += 1;
  Sampler c(p, 50);
  int same_ab = 0, same_ac = 0;
  for (int i = 0; i < 1000; ++i) {
    const int32_t ta = a.sample(v), tb = b.sample(v), tc = c.sample(v);
    same_ab += ta == tb;
    same_ac += ta == tc;
  }
  EXPECT_EQ(same_ab, 1000);
  EXPECT_LT(same_ac, 150);  // ~ sum p_i^2 * 1000 ~ 25 expected for independent streams
}

TEST(Sampler, ResetReproducesTheSequence) {
  SamplingParams p = plain(0.9f);
  p.top_k = 20;
  p.repeat_penalty = 1.3f;
  p.presence_penalty = 0.2f;
  p.penalty_last_n = 8;
  const std::vector<float> v = random_logits(200, 3, 3.0f);
  Sampler s(p, 200);
  auto run = [&] {
    std::vector<int32_t> out;
    for (int32_t t : {5, 6, 7}) s.accept(t);
    for (int i = 0; i < 100; ++i) {
      out.push_back(s.sample(v));
      s.accept(out.back());
    }
    return out;
  };
  const std::vector<int32_t> first = run();
  s.reset();
  EXPECT_EQ(run(), first);
  Sampler fresh(p, 200);
  s.reset();
  EXPECT_EQ(s.sample(v), fresh.sample(v));
}

// The draw is the inverse CDF of softmax(l / T) at the RNG's uniform: checked against an
// independent softmax (std::exp) and the reference-checked Rng. A disagreement needs u within
// ~1e-15 of a CDF step, which does not happen for these fixed seeds.
TEST(Sampler, DrawIsInverseCdfOfSoftmaxAtTheUniform) {
  const std::vector<float> v = random_logits(300, 11, 3.0f);
  for (float t : {0.5f, 1.0f, 2.5f}) {
    SamplingParams p = plain(t);
    p.seed = 4242;
    Sampler s(p, 300);
    Rng rng(p.seed);
    const std::vector<double> prob = softmax(v, t);
    for (int i = 0; i < 1000; ++i) {
      const double u = rng.uniform();
      double cum = 0;
      size_t want = 0;
      while (want + 1 < prob.size() && (cum += prob[want]) <= u) ++want;
      ASSERT_EQ(s.sample(v), static_cast<int32_t>(want)) << "temperature " << t << " draw " << i;
    }
  }
}

// Pearson chi-square of 200k draws against softmax(l / T); 7 degrees of freedom, critical value
// 24.32 at p = 0.001 (fixed seed, so the outcome is deterministic).
TEST(Sampler, FrequenciesMatchSoftmaxChiSquare) {
  const std::vector<float> v = {1.0f, 0.5f, 0.0f, -0.5f, -1.0f, 2.0f, -3.0f, 0.25f};
  for (float t : {1.0f, 0.6f, 2.0f}) {
    Sampler s(plain(t), static_cast<int64_t>(v.size()));
    const int n = 200000;
    const std::vector<int64_t> counts = histogram(s, v, n);
    const std::vector<double> prob = softmax(v, t);
    double chi2 = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      const double e = n * prob[i];
      chi2 += (counts[i] - e) * (counts[i] - e) / e;
    }
    EXPECT_LT(chi2, 24.32) << "temperature " << t;
  }
}

// ---- truncation ---------------------------------------------------------------------------------

TEST(Sampler, TopKKeepsExactlyTheKBestWithLowerIdOnTies) {
  // Best: id1 (3.0), id7 (2.9), then ids 2 and 4 tie at 2.5: the lower id (2) is kept.
  const std::vector<float> v = {0.1f, 3.0f, 2.5f, -1.0f, 2.5f, 0.0f, 1.0f, 2.9f, -2.0f, 0.5f};
  SamplingParams p = plain(50.0f);  // flat: every kept token is likely
  p.top_k = 3;
  Sampler s(p, 10);
  EXPECT_EQ(drawn(histogram(s, v, 5000)), (std::set<int32_t>{1, 2, 7}));
}

TEST(Sampler, TopKOnLargeVocabMatchesFullSort) {
  // Logits quantised to 1/8 so there are many ties, including at the cut.
  const size_t n = 100000;
  std::vector<float> v = random_logits(n, 21, 8.0f);
  for (float& x : v) x = std::round(x * 8) / 8;
  // Heap path (k small) and nth_element path (k a large share of the vocabulary).
  for (int32_t k : {40, 700}) {
    const size_t nv = k == 40 ? n : 1000;
    const std::vector<float> w(v.begin(), v.begin() + static_cast<ptrdiff_t>(nv));
    const std::vector<int32_t> order = ranked(w);
    const std::set<int32_t> want(order.begin(), order.begin() + k);
    SamplingParams p = plain(1000.0f);
    p.top_k = k;
    Sampler s(p, static_cast<int64_t>(nv));
    EXPECT_EQ(drawn(histogram(s, w, 20 * k)), want) << "k " << k;
  }
}

TEST(Sampler, TopKOnSortedTiedAndMaskedInputs) {
  // Adversarial orders for the block-threshold selection (k small against the vocabulary).
  const int32_t n = 20000, k = 40;
  SamplingParams p = plain(1000.0f);
  p.top_k = k;
  Sampler s(p, n);
  std::vector<float> ascending(n), descending(n), equal(n, 1.0f), masked(n, -kInf);
  for (int32_t i = 0; i < n; ++i) {
    ascending[static_cast<size_t>(i)] = 1e-3f * static_cast<float>(i);
    descending[static_cast<size_t>(i)] = -1e-3f * static_cast<float>(i);
  }
  std::set<int32_t> first, last, scattered;
  for (int32_t i = 0; i < k; ++i) {
    first.insert(i);
    last.insert(n - k + i);
  }
  for (int32_t i = 0; i < 10; ++i) {  // fewer finite logits than k: only they can be drawn
    masked[static_cast<size_t>(i * 1999 + 7)] = static_cast<float>(i % 3);
    scattered.insert(i * 1999 + 7);
  }
  EXPECT_EQ(drawn(histogram(s, ascending, 2000)), last);
  EXPECT_EQ(drawn(histogram(s, descending, 2000)), first);
  EXPECT_EQ(drawn(histogram(s, equal, 2000)), first);
  EXPECT_EQ(drawn(histogram(s, masked, 2000)), scattered);
}

TEST(Sampler, TopPKeepsTheSmallestPrefixReachingP) {
  // p = 0.5, 0.25, 0.125, 0.0625, 0.0625 placed at shuffled ids.
  const std::vector<int32_t> id_of_rank = {3, 0, 4, 1, 2};
  const double probs[] = {0.5, 0.25, 0.125, 0.0625, 0.0625};
  std::vector<float> v(5);
  for (size_t r = 0; r < 5; ++r) v[static_cast<size_t>(id_of_rank[r])] = static_cast<float>(std::log(probs[r]));
  struct Case {
    float top_p;
    std::set<int32_t> want;
  };
  const Case cases[] = {{0.3f, {3}}, {0.7f, {3, 0}}, {0.8f, {3, 0, 4}}, {0.9f, {3, 0, 4, 1}}, {1.0f, {0, 1, 2, 3, 4}}};
  for (const Case& c : cases)
    for (int32_t k : {0, 5}) {  // unsorted (top-k off) and sorted (after top-k) paths
      SamplingParams p = plain(5.0f);
      p.top_p = c.top_p;
      p.top_k = k;
      Sampler s(p, 5);
      EXPECT_EQ(drawn(histogram(s, v, 4000)), c.want) << "top_p " << c.top_p << " top_k " << k;
    }
}

TEST(Sampler, TopPIncludesTheTokenReachingPExactly) {
  // 400 equal logits: cumulative p reaches 0.5 exactly at the 200th token (sums of 1.0 are exact),
  // so ">= p" keeps ids 0..199 (ties rank lower ids first; "> p" would keep 201).
  const std::vector<float> v(400, 0.25f);
  SamplingParams p = plain(1.0f);
  p.top_p = 0.5f;
  Sampler s(p, 400);
  std::set<int32_t> want;
  for (int32_t i = 0; i < 200; ++i) want.insert(i);
  EXPECT_EQ(drawn(histogram(s, v, 5000)), want);
  // The same after top-k = 300 (the ranked path): 150 of the 300 survivors.
  p.top_k = 300;
  Sampler ranked_path(p, 400);
  want.clear();
  for (int32_t i = 0; i < 150; ++i) want.insert(i);
  EXPECT_EQ(drawn(histogram(ranked_path, v, 4000)), want);
}

TEST(Sampler, TopPWithoutTopKMatchesSortedOracle) {
  // Rank r has logit -0.01 r (so the nucleus spans many of the implementation's logit buckets),
  // placed at a permuted id (7919 is coprime with 2000).
  const int32_t n = 2000;
  std::vector<float> v(n);
  for (int32_t r = 0; r < n; ++r) v[static_cast<size_t>(r * 7919 % n)] = -0.01f * static_cast<float>(r);
  const std::vector<int32_t> order = ranked(v);
  const std::vector<double> prob = softmax(v, 1.0);
  for (float top_p : {0.3f, 0.5f}) {
    std::set<int32_t> want;
    double cum = 0;
    for (int32_t id : order) {
      want.insert(id);
      if ((cum += prob[static_cast<size_t>(id)]) >= top_p) break;
    }
    ASSERT_GT(want.size(), 20u);
    SamplingParams p = plain(100.0f);
    p.top_p = top_p;
    Sampler s(p, n);
    EXPECT_EQ(drawn(histogram(s, v, 4000)), want) << "top_p " << top_p;
  }
}

TEST(Sampler, MinPKeepsTokensWithAtLeastMinPTimesTheMaxProbability) {
  // Probabilities relative to the max: 1, 0.5, 0.2, 0.09, 0.11, 0.01; min_p = 0.1.
  const double ratio[] = {0.5, 0.09, 1.0, 0.01, 0.2, 0.11};
  std::vector<float> v;
  for (double r : ratio) v.push_back(static_cast<float>(std::log(r) + 0.3));
  for (float t : {1.0f, 4.0f})      // the cut is on pre-temperature probabilities
    for (int32_t k : {0, 6}) {      // unsorted and sorted paths
      SamplingParams p = plain(t);
      p.min_p = 0.1f;
      p.top_k = k;
      Sampler s(p, 6);
      EXPECT_EQ(drawn(histogram(s, v, 5000)), (std::set<int32_t>{0, 2, 4, 5})) << "temperature " << t << " top_k " << k;
    }
}

TEST(Sampler, ChainOrderTopKThenTopPThenMinPThenTemperature) {
  // Weights 5, 3, 1, 1. After top-k = 2 the probabilities renormalise to 0.625 / 0.375, so
  // top-p = 0.55 keeps token 0 alone (over all four tokens it would keep two).
  std::vector<float> v;
  for (double w : {5.0, 3.0, 1.0, 1.0}) v.push_back(static_cast<float>(std::log(w)));
  SamplingParams p = plain(1.0f);
  p.top_p = 0.55f;
  {
    Sampler s(p, 4);
    EXPECT_EQ(drawn(histogram(s, v, 3000)), (std::set<int32_t>{0, 1}));
  }
  p.top_k = 2;
  {
    Sampler s(p, 4);
    EXPECT_EQ(drawn(histogram(s, v, 3000)), (std::set<int32_t>{0}));
  }
  // min-p before temperature: ratio 0.15 < 0.2 is cut even though at T = 10 it would be 0.83.
  const std::vector<float> w = {0.0f, static_cast<float>(std::log(0.15))};
  SamplingParams q = plain(10.0f);
  q.min_p = 0.2f;
  Sampler s(q, 2);
  EXPECT_EQ(drawn(histogram(s, w, 3000)), (std::set<int32_t>{0}));
}

TEST(Sampler, CombinedTruncationOnLargeVocabMatchesOracle) {
  // Exponential-tailed logits, so the best 60 spread over a few units and every stage cuts.
  const size_t n = 50000;
  std::vector<float> v = random_logits(n, 77, 1.0f);
  for (float& x : v) x = -0.5f * std::log(0.5f * (1.0f - x));  // u = (1 - x) / 2 in (0, 1] -> -log(u) / 2
  SamplingParams p = plain(30.0f);
  p.top_k = 60;
  p.top_p = 0.8f;
  p.min_p = 0.1f;
  // Oracle: ranked top-k, softmax over them (std::exp), shortest prefix reaching top_p, min-p cut.
  const std::vector<int32_t> order = ranked(v);
  auto w = [&](int i) { return std::exp(static_cast<double>(v[static_cast<size_t>(order[i])]) - v[order[0]]); };
  double z = 0;
  for (int i = 0; i < p.top_k; ++i) z += w(i);
  int keep_p = 0;
  for (double cum = 0; keep_p < p.top_k && cum < p.top_p; ++keep_p) cum += w(keep_p) / z;
  std::set<int32_t> want;
  for (int i = 0; i < keep_p; ++i)
    if (w(i) >= p.min_p) want.insert(order[i]);
  ASSERT_LT(keep_p, p.top_k);                            // top-p cut something
  ASSERT_LT(want.size(), static_cast<size_t>(keep_p));   // min-p cut something
  ASSERT_GT(want.size(), 3u);
  Sampler s(p, static_cast<int64_t>(n));
  EXPECT_EQ(drawn(histogram(s, v, 3000)), want);
}

// ---- penalties ----------------------------------------------------------------------------------
// Greedy outcomes between a penalised token 0 and a rival token 1 whose logit is set to the exact
// expected penalised value (tie: token 0 wins) or one ulp above it (token 1 wins).

int32_t greedy_after(const SamplingParams& base, const std::vector<int32_t>& history, std::vector<float> logits) {
  SamplingParams p = base;
  p.temperature = 0;
  Sampler s(p, static_cast<int64_t>(logits.size()));
  for (int32_t t : history) s.accept(t);
  return s.sample(logits);
}

void expect_penalised_to(const SamplingParams& p, const std::vector<int32_t>& history, float logit0, float expected) {
  const std::vector<float> tie = {logit0, expected, -100.0f};
  const std::vector<float> above = {logit0, std::nextafter(expected, kInf), -100.0f};
  const std::vector<float> below = {logit0, std::nextafter(expected, -kInf), -100.0f};
  EXPECT_EQ(greedy_after(p, history, tie), 0) << logit0 << " -> " << expected;
  EXPECT_EQ(greedy_after(p, history, above), 1) << logit0 << " -> " << expected;
  EXPECT_EQ(greedy_after(p, history, below), 0) << logit0 << " -> " << expected;
}

TEST(Sampler, RepeatPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  SamplingParams p = plain(0);
  p.repeat_penalty = 1.5f;
  expect_penalised_to(p, {0}, 3.0f, 3.0f / 1.5f);
  expect_penalised_to(p, {0, 0, 0}, 3.0f, 3.0f / 1.5f);  // once, whatever the count
  expect_penalised_to(p, {0}, -1.0f, -1.0f * 1.5f);
  expect_penalised_to(p, {0}, 1.3f, 1.3f / 1.5f);  // != 1.3f * (1 / 1.5f) in f32: a true division
  expect_penalised_to(p, {2, 2, 0}, -0.3f, -0.3f * 1.5f);
}

TEST(Sampler, FrequencyAndPresencePenaltiesSubtractCountTimesFreqPlusPresence) {
  SamplingParams p = plain(0);
  p.frequency_penalty = 0.25f;
  p.presence_penalty = 0.5f;
  expect_penalised_to(p, {0, 0, 0}, 2.0f, 2.0f - (3 * 0.25f + 0.5f));
  expect_penalised_to(p, {0, 2}, 1.3f, 1.3f - (1 * 0.25f + 0.5f));
  {  // one subtraction of (c * freq + presence): subtracting the terms one by one rounds differently here
    SamplingParams q = plain(0);
    q.frequency_penalty = 0.1f;
    q.presence_penalty = 0.45f;
    expect_penalised_to(q, {0, 0}, 1.3f, 1.3f - (2 * 0.1f + 0.45f));
  }
  // Repeat penalty first, then the subtraction.
  p.repeat_penalty = 1.5f;
  expect_penalised_to(p, {0, 0}, 3.0f, 3.0f / 1.5f - (2 * 0.25f + 0.5f));
  // Negative frequency / presence penalties encourage repeats.
  SamplingParams q = plain(0);
  q.frequency_penalty = -0.125f;
  q.presence_penalty = -1.0f;
  expect_penalised_to(q, {0, 0}, -2.0f, -2.0f - (2 * -0.125f + -1.0f));
}

TEST(Sampler, PenaltiesSeeOnlyTheLastPenaltyLastNAcceptedTokens) {
  SamplingParams p = plain(0);
  p.frequency_penalty = 0.25f;
  p.penalty_last_n = 2;
  expect_penalised_to(p, {0, 0, 0}, 2.0f, 2.0f - 2 * 0.25f);  // two of the three occurrences are in the window
  // Token 0 left the window: unpenalised, it beats a rival at 1.9 (penalised, 1.75 would lose).
  EXPECT_EQ(greedy_after(p, {0, 2, 2}, {2.0f, 1.9f, -100.0f}), 0);
  // A long history (trimmed internally) keeps the right window.
  std::vector<int32_t> hist(1, 0);
  for (int i = 0; i < 300; ++i) hist.push_back(2);
  hist.push_back(0);
  p.penalty_last_n = 3;  // window {2, 2, 0}
  expect_penalised_to(p, hist, 2.0f, 2.0f - 0.25f);
  // -1: every accepted token; 0: penalties off.
  p.penalty_last_n = -1;
  expect_penalised_to(p, hist, 2.0f, 2.0f - 2 * 0.25f);
  p.penalty_last_n = 0;
  expect_penalised_to(p, hist, 2.0f, 2.0f);
}

TEST(Sampler, PenaltiesApplyBeforeTruncationWhenSampling) {
  // Token 0 leads until penalised; with top-k = 1 only the new leader (token 1) can be drawn.
  SamplingParams p = plain(1.0f);
  p.top_k = 1;
  p.presence_penalty = 1.0f;
  Sampler s(p, 3);
  const std::vector<float> v = {2.0f, 1.5f, 0.0f};
  EXPECT_EQ(s.sample(v), 0);
  s.accept(0);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s.sample(v), 1);
}

// ---- invalid input ------------------------------------------------------------------------------

void expect_invalid(const SamplingParams& p, const std::string& name, const std::string& value) {
  try {
    p.validate();
    ADD_FAILURE() << name << " = " << value << " was accepted";
  } catch (const InvalidArgument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(name), std::string::npos) << msg;
    EXPECT_NE(msg.find(value), std::string::npos) << msg;
  }
  EXPECT_THROW(Sampler(p, 10), InvalidArgument);
}

TEST(Sampler, InvalidParametersThrowNamingParameterAndValue) {
  const float nan = std::nanf("");
  auto with = [](auto field, auto value) {
    SamplingParams p;
    p.*field = value;
    return p;
  };
  expect_invalid(with(&SamplingParams::temperature, nan), "temperature", "nan");
  expect_invalid(with(&SamplingParams::temperature, -0.5f), "temperature", "-0.5");
  expect_invalid(with(&SamplingParams::temperature, kInf), "temperature", "inf");
  expect_invalid(with(&SamplingParams::top_p, 0.0f), "top_p", "0");
  expect_invalid(with(&SamplingParams::top_p, 1.5f), "top_p", "1.5");
  expect_invalid(with(&SamplingParams::top_p, nan), "top_p", "nan");
  expect_invalid(with(&SamplingParams::min_p, -0.25f), "min_p", "-0.25");
  expect_invalid(with(&SamplingParams::min_p, 1.25f), "min_p", "1.25");
  expect_invalid(with(&SamplingParams::min_p, nan), "min_p", "nan");
  expect_invalid(with(&SamplingParams::repeat_penalty, 0.0f), "repeat_penalty", "0");
  expect_invalid(with(&SamplingParams::repeat_penalty, -1.0f), "repeat_penalty", "-1");
  expect_invalid(with(&SamplingParams::repeat_penalty, nan), "repeat_penalty", "nan");
  expect_invalid(with(&SamplingParams::repeat_penalty, kInf), "repeat_penalty", "inf");
  expect_invalid(with(&SamplingParams::frequency_penalty, nan), "frequency_penalty", "nan");
  expect_invalid(with(&SamplingParams::presence_penalty, -kInf), "presence_penalty", "-inf");
  expect_invalid(with(&SamplingParams::penalty_last_n, -2), "penalty_last_n", "-2");

  // Edges of the accepted ranges.
  for (const SamplingParams& p : {with(&SamplingParams::temperature, 0.0f), with(&SamplingParams::top_p, 1.0f),
                                  with(&SamplingParams::min_p, 0.0f), with(&SamplingParams::min_p, 1.0f),
                                  with(&SamplingParams::penalty_last_n, -1), with(&SamplingParams::top_k, -3),
                                  with(&SamplingParams::frequency_penalty, -2.0f)})
    EXPECT_NO_THROW(p.validate());
}

TEST(Sampler, InvalidVocabLogitsAndTokensThrow) {
  EXPECT_THROW(Sampler(plain(), 0), InvalidArgument);
  Sampler s(plain(), 4);
  EXPECT_THROW(s.sample(std::vector<float>{1, 2, 3}), InvalidArgument);
  try {
    s.sample(std::vector<float>{1, 2, std::nanf(""), 3});
    ADD_FAILURE() << "NaN logit accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("logits[2]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(s.sample(std::vector<float>{1, kInf, 3, 4}), InvalidArgument);
  EXPECT_THROW(s.sample(std::vector<float>(4, -kInf)), InvalidArgument);
  EXPECT_THROW(s.accept(-1), InvalidArgument);
  EXPECT_THROW(s.accept(4), InvalidArgument);
  // -inf entries are masked tokens: never drawn.
  const std::vector<float> masked = {-kInf, 0.0f, -kInf, 0.0f};
  EXPECT_EQ(drawn(histogram(s, masked, 2000)), (std::set<int32_t>{1, 3}));
  SamplingParams g = plain(0);
  Sampler greedy(g, 4);
  EXPECT_EQ(greedy.sample(masked), 1);
  EXPECT_THROW(greedy.sample(std::vector<float>(4, -kInf)), InvalidArgument);
  // Penalties that overflow: to +inf is rejected, to -inf masks the token.
  SamplingParams extreme = plain(1.0f);
  extreme.repeat_penalty = 1e-30f;
  Sampler up(extreme, 2);
  up.accept(0);
  EXPECT_THROW(up.sample(std::vector<float>{1e10f, 0.0f}), InvalidArgument);
  extreme.repeat_penalty = 2.0f;
  Sampler down(extreme, 2);
  down.accept(0);
  EXPECT_THROW(down.sample(std::vector<float>{-3e38f, -kInf}), InvalidArgument);
  EXPECT_EQ(down.sample(std::vector<float>{-3e38f, -1e38f}), 1);
}

}  // namespace
}  // namespace contrail
