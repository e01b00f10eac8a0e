#include "contrail/sampling/sampler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <string_view>

#include "contrail/core/error.h"
#include "sampling/det_exp.h"

namespace contrail {
namespace {

using sampling_detail::det_exp;

constexpr float kInf = std::numeric_limits<float>::infinity();

// Logits per block in block-wise scans (argmax, top-k threshold).
constexpr size_t kBlock = 64;
// Independent lanes in the reduction loops, so the compiler can vectorise them.
constexpr size_t kLanes = 8;
// Top-k uses the block-maxima threshold filter while k * kBlock * kTopKFilterRatio <= n_vocab
// (then few blocks reach the threshold); above that, nth_element over all ids.
constexpr int64_t kTopKFilterRatio = 4;
// Top-p without top-k buckets tokens by (l_max - l) in steps of 1/kBucketsPerNat nat; the last
// bucket takes everything from (kBuckets - 1) / kBucketsPerNat = 63.875 nats below the max down
// (relative weight < 2e-28).
constexpr size_t kBuckets = 512;
constexpr double kBucketsPerNat = 8;

template <typename T>
[[noreturn]] void bad_param(std::string_view name, T value, std::string_view range) {
  throw InvalidArgument(fmt::format("sampling parameter {} = {} is invalid: accepted {}", name, value, range));
}

[[noreturn]] void all_masked() {
  throw InvalidArgument("Sampler::sample: every logit is -inf after the penalties; no token can be chosen");
}

// Candidate order: higher logit first, lower id first among equal logits (a strict total order,
// as logits hold no NaN), so every selection algorithm keeps the same set.
struct Better {
  const float* v;  // (n_vocab) logits being ranked
  bool operator()(int32_t a, int32_t b) const { return v[a] > v[b] || (v[a] == v[b] && a < b); }
};

// Pre-temperature softmax numerator of one candidate.
double weight(const float* v, int32_t id, double l_max) { return det_exp(static_cast<double>(v[id]) - l_max); }

// True when no value is NaN or +inf.
bool all_below_inf(const float* v, size_t n) {
  bool bad[kLanes] = {};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (size_t j = 0; j < kLanes; ++j) bad[j] |= !(v[i + j] < kInf);
  bool any = false;
  for (size_t j = 0; j < kLanes; ++j) any |= bad[j];
  for (; i < n; ++i) any |= !(v[i] < kInf);
  return !any;
}

// Largest value, ignoring NaN; -inf if there is none.
float max_value(const float* v, size_t n) {
  float lane[kLanes];
  std::fill(lane, lane + kLanes, -kInf);
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (size_t j = 0; j < kLanes; ++j) lane[j] = v[i + j] > lane[j] ? v[i + j] : lane[j];
  float m = -kInf;
  for (size_t j = 0; j < kLanes; ++j) m = lane[j] > m ? lane[j] : m;
  for (; i < n; ++i) m = v[i] > m ? v[i] : m;
  return m;
}

// Writes the k best ids (Better order) to idx[0, k); 0 < k < n. idx: (n); blocks: (2, ceil(n / kBlock)).
void select_top_k(const float* v, int64_t n, int64_t k, int32_t* idx, float* blocks) {
  const Better better{v};
  if (k * static_cast<int64_t>(kBlock) * kTopKFilterRatio > n) {
    std::iota(idx, idx + n, 0);
    std::nth_element(idx, idx + k, idx + n, better);
    std::sort(idx, idx + k, better);
    return;
  }
  // theta = the k-th largest block maximum bounds the k-th largest logit from below (the k block
  // maxima >= theta are k distinct logits), so every top-k token has v >= theta. Only blocks whose
  // maximum reaches theta are scanned; ties at theta are all collected and ranked by id.
  const auto nu = static_cast<size_t>(n);
  const size_t n_blocks = (nu + kBlock - 1) / kBlock;
  float* block_max = blocks;          // (n_blocks)
  float* selection = blocks + n_blocks;  // (n_blocks) copy reordered by nth_element
  for (size_t b = 0; b < n_blocks; ++b) block_max[b] = max_value(v + b * kBlock, std::min(kBlock, nu - b * kBlock));
  std::copy(block_max, block_max + n_blocks, selection);
  std::nth_element(selection, selection + (k - 1), selection + n_blocks, std::greater<float>());
  const float theta = selection[k - 1];
  int64_t m = 0;
  for (size_t b = 0; b < n_blocks; ++b) {
    if (block_max[b] < theta) continue;
    const size_t end = std::min(nu, (b + 1) * kBlock);
    for (size_t t = b * kBlock; t < end; ++t)
      if (v[t] >= theta) idx[m++] = static_cast<int32_t>(t);
  }
  std::partial_sort(idx, idx + k, idx + m, better);
}

// Top-p over candidates idx[0, n_cand) already in Better order; returns how many to keep.
int64_t top_p_ranked(const float* v, const int32_t* idx, int64_t n_cand, double l_max, double top_p) {
  double total = 0;
  for (int64_t i = 0; i < n_cand; ++i) total += weight(v, idx[i], l_max);
  const double target = top_p * total;
  double cum = 0;
  for (int64_t i = 0; i < n_cand; ++i) {
    cum += weight(v, idx[i], l_max);
    if (cum >= target) return i + 1;
  }
  return n_cand;
}

size_t bucket_of(double l_max, float l) {
  const double d = l_max - static_cast<double>(l);  // >= 0; +inf for -inf logits
  return d < static_cast<double>(kBuckets - 1) / kBucketsPerNat ? static_cast<size_t>(d * kBucketsPerNat) : kBuckets - 1;
}

// Top-p over every token (top-k off): writes the kept ids to idx[0, result). Buckets of logits
// find where the cumulative weight crosses the target in O(n); only the crossing bucket is sorted.
// Buckets before it are kept whole, in id order. idx: (n).
int64_t top_p_all(const float* v, int64_t n, int32_t* idx, double l_max, double top_p) {
  double bucket_weight[kBuckets] = {};
  for (int32_t t = 0; t < n; ++t) bucket_weight[bucket_of(l_max, v[t])] += weight(v, t, l_max);
  double total = 0;
  for (double w : bucket_weight) total += w;
  const double target = top_p * total;
  size_t crossing = 0;
  double cum = 0;  // weight of the buckets before `crossing`
  while (crossing + 1 < kBuckets && cum + bucket_weight[crossing] < target) cum += bucket_weight[crossing++];
  int64_t kept = 0, tail = n;  // buckets before the crossing one fill idx from the front, it fills the back
  for (int32_t t = 0; t < n; ++t) {
    const size_t b = bucket_of(l_max, v[t]);
    if (b < crossing)
      idx[kept++] = t;
    else if (b == crossing)
      idx[--tail] = t;
  }
  std::sort(idx + tail, idx + n, Better{v});
  for (int64_t i = tail; i < n; ++i) {  // kept <= i: moving down never overwrites an unread entry
    idx[kept++] = idx[i];
    cum += weight(v, idx[i], l_max);
    if (cum >= target) break;
  }
  return kept;
}

// Keeps the candidates with weight >= min_p (stable); the max has weight 1, so at least one stays.
int64_t min_p_filter(const float* v, int32_t* idx, int64_t n_cand, double l_max, double min_p) {
  int64_t kept = 0;
  for (int64_t i = 0; i < n_cand; ++i)
    if (weight(v, idx[i], l_max) >= min_p) idx[kept++] = idx[i];
  return kept;
}

// Draws from exp((l - l_max) / temp) over idx[0, n_cand) with the uniform u in [0, 1). Weights
// are recomputed rather than stored: det_exp is a pure function, so the running sum reaches
// exactly `total` > u * total, and the pick always has positive weight.
int32_t draw(const float* v, const int32_t* idx, int64_t n_cand, double l_max, double temp, double u) {
  auto w = [&](int64_t i) { return det_exp((static_cast<double>(v[idx[i]]) - l_max) / temp); };
  double total = 0;
  for (int64_t i = 0; i < n_cand; ++i) total += w(i);
  const double target = u * total;  // < total, since u <= 1 - 2^-53
  double cum = 0;
  for (int64_t i = 0; i + 1 < n_cand; ++i) {
    cum += w(i);
    if (cum > target) return idx[i];
  }
  return idx[n_cand - 1];
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
  const float* x = logits.data();
  const size_t n = logits.size();
  // Block maxima first (vectorisable), then the first index of the maximum in the first block
  // holding it: the lowest index wins ties. NaN never compares greater, so it is skipped.
  float best = -kInf;
  size_t best_block = n;
  for (size_t b = 0; b < n; b += kBlock) {
    const float m = max_value(x + b, std::min(kBlock, n - b));
    if (m > best) {
      best = m;
      best_block = b;
    }
  }
  if (best_block == n) {  // nothing above -inf: the first -inf, or 0 when everything is NaN
    for (size_t i = 0; i < n; ++i)
      if (!std::isnan(x[i])) return static_cast<int32_t>(i);
    return 0;
  }
  size_t i = best_block;
  while (x[i] != best) ++i;
  return static_cast<int32_t>(i);
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
  if (params_.temperature > 0) {
    idx_.resize(n);
    block_max_.resize(2 * ((n + kBlock - 1) / kBlock));
  }
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
  if (!all_below_inf(logits.data(), logits.size())) {
    const auto bad = std::find_if(logits.begin(), logits.end(), [](float x) { return !(x < kInf); });
    throw InvalidArgument(fmt::format("Sampler::sample: logits[{}] = {}; logits must be finite or -inf",
                                      bad - logits.begin(), *bad));
  }
  const int64_t n = n_vocab_;
  const float* v = penalties_on() ? penalised(logits) : logits.data();  // (n_vocab)

  if (params_.temperature <= 0) {
    const int32_t best = argmax(std::span<const float>(v, static_cast<size_t>(n)));
    if (v[best] == -kInf) all_masked();
    return best;
  }

  // Candidates are idx[0, n_cand); `ranked` says they are in Better order.
  int32_t* idx = idx_.data();
  int64_t n_cand = n;
  bool ranked = false;
  const int64_t k = params_.top_k;
  if (k > 0 && k < n) {
    select_top_k(v, n, k, idx, block_max_.data());
    n_cand = k;
    ranked = true;
  }
  const double l_max = ranked ? v[idx[0]] : max_value(v, static_cast<size_t>(n));
  if (l_max == -static_cast<double>(kInf)) all_masked();

  if (params_.top_p < 1) {
    n_cand = ranked ? top_p_ranked(v, idx, n_cand, l_max, params_.top_p) : top_p_all(v, n, idx, l_max, params_.top_p);
  } else if (!ranked) {
    std::iota(idx, idx + n, 0);  // every token, in id order
  }
  if (params_.min_p > 0) n_cand = min_p_filter(v, idx, n_cand, l_max, params_.min_p);
  return draw(v, idx, n_cand, l_max, params_.temperature, rng_.uniform());
}

}  // namespace contrail
