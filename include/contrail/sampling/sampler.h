// Token sampling from a row of logits. Order of the chain (llama.cpp's default):
// penalties (repetition / frequency / presence over the last `penalty_last_n` accepted tokens)
// -> top-k -> top-p -> min-p -> temperature -> draw with the seeded RNG.
// temperature <= 0 means greedy: argmax of the penalised logits, lowest id wins ties.
// Contract: the same seed, parameters and accepted-token history give the same tokens on every
// run and machine (our own RNG + reduction order, no std:: distributions).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

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
  void validate() const;
};

class Sampler {
 public:
  Sampler(const SamplingParams& params, int64_t n_vocab);  // validates
  // Picks the next token from logits (n_vocab values; not modified). Does not accept it.
  int32_t sample(std::span<const float> logits);
  // Records a token in the penalty history (prompt tokens too, if wanted).
  void accept(int32_t token);
  void reset();  // clears history and re-seeds
  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  int64_t n_vocab_;
  std::vector<int32_t> history_;
  uint64_t rng_state_[4];
  // scratch reused across calls
  std::vector<float> work_;
  std::vector<int32_t> idx_;
};

// argmax with the lowest index winning ties.
int32_t argmax(std::span<const float> logits);

}  // namespace contrail
