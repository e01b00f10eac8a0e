// Token sampling from a row of logits. Order of the chain (llama.cpp's default):
// penalties (repetition / frequency / presence over the last `penalty_last_n` accepted tokens)
// -> top-k -> top-p -> min-p -> temperature -> draw with the seeded RNG.
// temperature <= 0 means greedy: argmax of the penalised logits, lowest id wins ties.
// Contract: the same seed, parameters and accepted-token history give the same tokens on every
// run and machine (our own RNG + reduction order, no std:: distributions).
//
// Exact definitions (l = logit, p = softmax probability over the current candidates):
// - penalties, for each token t occurring c > 0 times in the window of the last penalty_last_n
//   accepted tokens (-1: every accepted token, 0: none):
//     l = l > 0 ? l / repeat_penalty : l * repeat_penalty;
//     l -= c * frequency_penalty + presence_penalty;        (f32 arithmetic, in this order)
// - candidates are ordered by logit descending, lower id first on equal logits.
// - top-k (0 < top_k < n_vocab): keep the top_k best candidates.
// - top-p (top_p < 1): keep the shortest prefix, in candidate order, whose cumulative p >= top_p
//   (at least one token). Sums run in a fixed order (rank order after top-k; without top-k,
//   per logit bucket then rank order inside the bucket that crosses top_p), so equal inputs give
//   equal cuts everywhere.
// - min-p (min_p > 0): keep the candidates with p >= min_p * p_max, i.e. exp(l - l_max) >= min_p.
// - temperature T > 0: draw a token with probability exp((l - l_max) / T) / sum over the kept
//   candidates: one uniform u in [0, 1) (Rng::uniform) picks the first candidate whose running
//   weight sum exceeds u * total, summed in a fixed candidate order.
// All weights use a deterministic exp in double precision (no libm differences between machines).
// -inf logits are allowed (masked tokens, never drawn); NaN and +inf are rejected.
// A Sampler is not thread-safe; use one per sequence.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "contrail/sampling/rng.h"

namespace contrail {

struct SamplingParams {
  float temperature = 0.8f;      // 0 = greedy
  int32_t top_k = 40;            // <= 0: off
  float top_p = 0.95f;           // >= 1: off
  float min_p = 0.05f;           // <= 0: off
  float repeat_penalty = 1.0f;   // 1 = off; > 1 discourages repeats (CTRL-style, divides positive logits)
  float frequency_penalty = 0.f; // subtracts count * value
  float presence_penalty = 0.f;  // subtracts value if present
  int32_t penalty_last_n = 64;   // window of accepted tokens the penalties see; 0 = off, -1 = all
  uint64_t seed = 0xC0FFEEu;

  // Throws InvalidArgument naming the parameter, its value and the accepted range (NaN, negative
  // temperature, top_p outside (0, 1], min_p outside [0, 1], repeat_penalty <= 0, ...).
  // Accepted: temperature finite >= 0; any top_k; top_p in (0, 1]; min_p in [0, 1];
  // repeat_penalty finite > 0; frequency/presence penalties finite (negative ones encourage
  // repeats); penalty_last_n >= -1; any seed.
  void validate() const;
};

class Sampler {
 public:
  // Validates params; n_vocab must be in [1, INT32_MAX]. Scratch buffers are sized here, so
  // sample() does not allocate (accept() with penalty_last_n = -1 grows the history).
  Sampler(const SamplingParams& params, int64_t n_vocab);  // validates
  // Picks the next token from logits (n_vocab values; not modified). Does not accept it.
  // Throws InvalidArgument if logits.size() != n_vocab, a logit is NaN or +inf, or every logit is
  // -inf after the penalties. With temperature > 0 it consumes exactly one uniform draw of the
  // RNG; greedy consumes none.
  int32_t sample(std::span<const float> logits);
  // Records a token in the penalty history (prompt tokens too, if wanted). Throws
  // InvalidArgument if token is outside [0, n_vocab). A no-op when the penalties are off.
  void accept(int32_t token);
  void reset();  // clears history and re-seeds
  const SamplingParams& params() const { return params_; }

 private:
  bool penalties_on() const;
  // Copies logits into work_ and applies the penalties of the current window; returns work_.
  const float* penalised(std::span<const float> logits);

  SamplingParams params_;
  int64_t n_vocab_;
  // Accepted tokens, oldest first; the penalty window is the last penalty_last_n of them. With a
  // finite window it is trimmed to that length whenever it reaches twice it (amortised O(1)).
  std::vector<int32_t> history_;
  Rng rng_;
  // scratch reused across calls
  std::vector<float> work_;       // (n_vocab) penalised logits; sized only when penalties are on
  std::vector<int32_t> idx_;      // (n_vocab) candidate token ids; sized only when temperature > 0
  std::vector<float> block_max_;  // (2, ceil(n_vocab / 64)) per-block maxima for top-k; as idx_
  std::vector<int32_t> counts_;   // (n_vocab) per-token window counts; all zero between calls
};

// argmax with the lowest index winning ties. NaN entries are skipped (0 if all are NaN).
// Throws InvalidArgument on an empty span.
int32_t argmax(std::span<const float> logits);

}  // namespace contrail
