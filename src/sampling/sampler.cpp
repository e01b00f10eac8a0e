#include "contrail/sampling/sampler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string_view>

#include "contrail/core/error.h"
#include "sampling/det_exp.h"

namespace contrail {
namespace {

using sampling_detail::det_exp;

constexpr float kInf = std::numeric_limits<float>::infinity();

// Below this many top-k survivors per vocabulary entry, a single heap pass (partial_sort) beats
// nth_element + sort.
constexpr int64_t kHeapSelectRatio = 16;
// First prefix length sorted when top-p runs over an unsorted (top-k off) candidate set; it grows
// 4x while the nucleus is not reached.
constexpr int64_t kTopPFirstChunk = 256;

template <typename T>
[[noreturn]] void bad_param(std::string_view name, T value, std::string_view range) {
  throw InvalidArgument(fmt::format("sampling parameter {} = {} is invalid: accepted {}", name, value, range));
}

// Candidate order: higher logit first, lower id first among equal logits (a strict total order,
// as logits hold no NaN), so every selection algorithm keeps the same set.
struct Better {
  const float* v;  // (n_vocab) logits being ranked
  bool operator()(int32_t a, int32_t b) const { return v[a] > v[b] || (v[a] == v[b] && a < b); }
};

// Pre-temperature softmax numerator of one candidate.
double weight(const float* v, int32_t id, double l_max) { return det_exp(static_cast<double>(v[id]) - l_max); }

[[noreturn]] void all_masked() {
  throw InvalidArgument("Sampler::sample: every logit is -inf after the penalties; no token can be chosen");
}

}  // namespace

void SamplingParams::validate() const {
  if (!std::isfinite(temperature) || temperature < 0) bad_param("temperature", temperature, "finite >= 0 (0 = greedy)");
  if (!(top_p > 0 && top_p <= 1)) bad_param("top_p", top_p, "(0, 1] (1 = off)");
  if (!(min_p >= 0 && min_p <= 1)) bad_param("min_p", min_p, "[0, 1] (0 = off)");
  if (!std::isfinite(repeat_penalty) || repeat_penalty <= 0)
    bad_param("repeat_penalty", repeat_penalty, "finite > 0 (1 = off)");
  if (!std::isfinite(frequency_penalty)) bad_param("frequency_penalty", frequency_penalty, "finite (0 = off)");
  if (!std::isfinite(presence_penalty)) bad_param("presence_penalty", presence_penalty, "finite (0 = off)");
  if (penalty_last_n < -1)
    bad_param("penalty_last_n", penalty_last_n, ">= -1 (0 = off, -1 = every accepted token)");
}

int32_t argmax(std::span<const float> logits) {
  if (logits.empty()) throw InvalidArgument("argmax: empty logits");
  const size_t n = logits.size();
  size_t best = 0;
  while (best < n && std::isnan(logits[best])) ++best;  // start from the first non-NaN
  if (best == n) return 0;
  for (size_t i = best + 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;  // strict: the first of equal maxima stays
  return static_cast<int32_t>(best);
}

Sampler::Sampler(const SamplingParams& params, int64_t n_vocab) : params_(params), n_vocab_(n_vocab), rng_(params.seed) {
  params_.validate();
  if (n_vocab < 1 || n_vocab > std::numeric_limits<int32_t>::max())
    throw InvalidArgument(fmt::format("Sampler: n_vocab = {} is outside [1, {}]", n_vocab,
                                      std::numeric_limits<int32_t>::max()));
  const auto n = static_cast<size_t>(n_vocab);
  if (penalties_on()) {
    work_.resize(n);
    counts_.assign(n, 0);
    if (params_.penalty_last_n > 0) history_.reserve(2 * static_cast<size_t>(params_.penalty_last_n));
  }
  if (params_.temperature > 0) idx_.resize(n);
}

bool Sampler::penalties_on() const {
  return params_.penalty_last_n != 0 &&
         (params_.repeat_penalty != 1.0f || params_.frequency_penalty != 0.0f || params_.presence_penalty != 0.0f);
}

void Sampler::accept(int32_t token) {
  if (token < 0 || token >= n_vocab_)
    throw InvalidArgument(fmt::format("Sampler::accept: token id {} is outside the vocabulary [0, {})", token, n_vocab_));
  if (!penalties_on()) return;
  history_.push_back(token);
  if (params_.penalty_last_n > 0) {
    const auto window = static_cast<size_t>(params_.penalty_last_n);
    if (history_.size() >= 2 * window) history_.erase(history_.begin(), history_.end() - static_cast<ptrdiff_t>(window));
  }
}

void Sampler::reset() {
  history_.clear();
  rng_.reseed(params_.seed);
}

const float* Sampler::penalised(std::span<const float> logits) {
  std::copy(logits.begin(), logits.end(), work_.begin());
  const size_t n_hist = history_.size();
  const size_t n_win = params_.penalty_last_n < 0 ? n_hist : std::min(n_hist, static_cast<size_t>(params_.penalty_last_n));
  const std::span<const int32_t> window(history_.data() + (n_hist - n_win), n_win);
  for (int32_t t : window) ++counts_[static_cast<size_t>(t)];
  // Each distinct token is penalised at its first occurrence; zeroing its count marks it done and
  // leaves counts_ all zero again.
  int32_t overflowed = -1;
  for (int32_t t : window) {
    const int32_t c = counts_[static_cast<size_t>(t)];
    if (c == 0) continue;
    counts_[static_cast<size_t>(t)] = 0;
    float& l = work_[static_cast<size_t>(t)];
    l = l > 0 ? l / params_.repeat_penalty : l * params_.repeat_penalty;
    l -= static_cast<float>(c) * params_.frequency_penalty + params_.presence_penalty;
    if (!(l < kInf) && overflowed < 0) overflowed = t;
  }
  if (overflowed >= 0)
    throw InvalidArgument(fmt::format(
        "Sampler::sample: penalising token {} (logit {}) overflowed to +inf; repeat_penalty = {}, frequency_penalty = {}, "
        "presence_penalty = {} are too extreme",
        overflowed, logits[static_cast<size_t>(overflowed)], params_.repeat_penalty, params_.frequency_penalty,
        params_.presence_penalty));
  return work_.data();
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (static_cast<int64_t>(logits.size()) != n_vocab_)
    throw InvalidArgument(fmt::format("Sampler::sample: got {} logits, expected n_vocab = {}", logits.size(), n_vocab_));
  const int64_t n = n_vocab_;
  {
    bool ok = true;  // every logit is < +inf (false for NaN and +inf)
    for (float x : logits) ok &= x < kInf;
    if (!ok) {
      const auto bad = std::find_if(logits.begin(), logits.end(), [](float x) { return !(x < kInf); });
      throw InvalidArgument(fmt::format("Sampler::sample: logits[{}] = {}; logits must be finite or -inf",
                                        bad - logits.begin(), *bad));
    }
  }
  const float* v = penalties_on() ? penalised(logits) : logits.data();  // (n_vocab)

  if (params_.temperature <= 0) {
    const int32_t best = argmax(std::span<const float>(v, static_cast<size_t>(n)));
    if (v[best] == -kInf) all_masked();
    return best;
  }

  // Candidates are idx_[0, n_cand); `sorted` says they are in Better order.
  const Better better{v};
  int32_t* idx = idx_.data();
  std::iota(idx, idx + n, 0);
  int64_t n_cand = n;
  bool sorted = false;
  const int64_t k = params_.top_k;
  if (k > 0 && k < n) {
    if (k * kHeapSelectRatio <= n) {
      std::partial_sort(idx, idx + k, idx + n, better);
    } else {
      std::nth_element(idx, idx + k, idx + n, better);
      std::sort(idx, idx + k, better);
    }
    n_cand = k;
    sorted = true;
  }
  const double l_max = sorted ? v[idx[0]] : *std::max_element(v, v + n);
  if (l_max == -static_cast<double>(kInf)) all_masked();

  if (params_.top_p < 1) {
    double total = 0;  // sum of weights over the candidates, in their current order
    for (int64_t i = 0; i < n_cand; ++i) total += weight(v, idx[i], l_max);
    const double target = static_cast<double>(params_.top_p) * total;
    // Walk the candidates best-first; when unsorted, sort a growing prefix on demand (the nucleus
    // is usually a tiny part of the vocabulary).
    double cum = 0;
    int64_t keep = n_cand, done = 0;
    int64_t end = sorted ? n_cand : std::min(n_cand, kTopPFirstChunk);
    for (;;) {
      if (!sorted) {
        if (end < n_cand) std::nth_element(idx + done, idx + end, idx + n_cand, better);
        std::sort(idx + done, idx + end, better);
      }
      for (int64_t i = done; i < end && keep == n_cand; ++i) {
        cum += weight(v, idx[i], l_max);
        if (cum >= target) keep = i + 1;
      }
      if (keep < n_cand || end == n_cand) break;
      done = end;
      end = std::min(n_cand, 4 * end);
    }
    n_cand = keep;
    sorted = true;
  }

  if (params_.min_p > 0) {
    const double min_p = params_.min_p;
    int64_t kept = 0;  // stable compaction; the max has weight 1 >= min_p, so kept >= 1
    for (int64_t i = 0; i < n_cand; ++i)
      if (weight(v, idx[i], l_max) >= min_p) idx[kept++] = idx[i];
    n_cand = kept;
  }

  // Temperature and the draw. Weights are recomputed rather than stored: det_exp is a pure
  // function, so the running sum below reaches exactly `total` and the loop always picks a
  // candidate of positive weight before the last one or the last one itself.
  const double temp = params_.temperature;
  auto tweight = [&](int64_t i) { return det_exp((static_cast<double>(v[idx[i]]) - l_max) / temp); };
  double total = 0;
  for (int64_t i = 0; i < n_cand; ++i) total += tweight(i);
  const double target = rng_.uniform() * total;  // < total, since uniform() <= 1 - 2^-53
  double cum = 0;
  for (int64_t i = 0; i + 1 < n_cand; ++i) {
    cum += tweight(i);
    if (cum > target) return idx[i];
  }
  return idx[n_cand - 1];
}

}  // namespace contrail
