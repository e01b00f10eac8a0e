// Request sets for `contrail bench serve` (the serving benchmark), after JetStream's
// benchmarks/benchmark_serving.py (google/JetStream) and vLLM's benchmarks/benchmark_serving.py.
//
// Contracts:
//  - Token counts come from a caller-supplied TokenCounter (the server's POST /tokenize or a local
//    contrail::Tokenizer). Prompts are counted WITH special tokens (BOS), as the server counts
//    them; reference outputs WITHOUT (they are continuations).
//  - ShareGPT: a JSON list of {"conversations": [{"from": ..., "value": ...}, ...]}; entries with
//    fewer than two turns, or whose first turn is not from "human", are skipped; prompt = first
//    turn, reference output = second turn (JetStream's first-two-turns rule).
//  - JetStream's filters on the reference lengths: prompt >= 4 and output >= 4 tokens,
//    prompt <= max_input_length, prompt + output <= max_target_length; plus, when the server's
//    context is known (max_model_len > 0), prompt + sent output <= max_model_len. The sent output
//    length (max_tokens) is min(reference length, max_output_length).
//  - Sampling is deterministic for a seed: conversations are shuffled with the seed, counted in
//    that order until num_prompts pass the filters; when the whole file yields fewer (but some),
//    the passing ones repeat cyclically (JetStream repeats data for small sets).
//  - Synthetic sets ("random", "shared-prefix") are built from seeded random words; the prompt is
//    the longest word sequence whose token count is <= the target, so prompt_len is exact (counted)
//    and close to the target. Output lengths are exact targets (sent with ignore_eos).
// Errors throw contrail::Error / InvalidArgument naming the value and the limit.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace contrail::bench {

struct BenchRequest {
  std::string prompt;
  int64_t prompt_len = 0;      // tokens, with BOS
  int64_t output_len = 0;      // max_tokens sent (capped reference length)
  int64_t ref_output_len = 0;  // reference reply length (0 for synthetic sets)
};

// Number of tokens in `text`; add_special: count BOS/EOS as the tokenizer would add them.
using TokenCounter = std::function<int64_t(const std::string& text, bool add_special)>;

struct FilterOptions {
  int64_t max_input_length = 1024;   // JetStream's prompt cap
  int64_t max_target_length = 2048;  // JetStream's prompt + output cap
  int64_t max_output_length = 0;     // cap on the sent output length; 0 = none
  int64_t max_model_len = 0;         // the server's context; 0 = unknown
  int64_t min_len = 4;               // JetStream prunes prompts/outputs shorter than this
};

// (prompt, reference reply) pairs of a ShareGPT file. Throws Error naming the path when it cannot
// be read or is not such JSON.
std::vector<std::pair<std::string, std::string>> load_sharegpt(const std::string& path);

// Why pairs were dropped (reported to the user).
struct FilterStats {
  int64_t counted = 0, too_short = 0, too_long_input = 0, too_long_total = 0, over_context = 0;
  bool repeated = false;  // fewer passing pairs than num_prompts: repeated cyclically
};

// The JetStream sampling + filters above. Throws InvalidArgument when no pair passes.
std::vector<BenchRequest> sample_sharegpt(const std::vector<std::pair<std::string, std::string>>& pairs,
                                          int64_t num_prompts, uint64_t seed, const FilterOptions& f,
                                          const TokenCounter& count, FilterStats* stats = nullptr);

// num_prompts prompts of about input_len tokens (each different), output_len tokens each.
std::vector<BenchRequest> random_requests(int64_t num_prompts, int64_t input_len, int64_t output_len, uint64_t seed,
                                          const TokenCounter& count);

// num_prompts prompts = one common prefix of about prefix_len tokens + a distinct suffix of about
// suffix_len tokens; output_len tokens each.
std::vector<BenchRequest> shared_prefix_requests(int64_t num_prompts, int64_t prefix_len, int64_t suffix_len,
                                                 int64_t output_len, uint64_t seed, const TokenCounter& count);

}  // namespace contrail::bench
