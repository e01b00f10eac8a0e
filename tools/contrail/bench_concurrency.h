// The batch sweep of `contrail bench --concurrency 1,4,16`: aggregate generation throughput of
// the serving engine with that many requests in flight (continuous batching: one weight read
// per step serves every sequence).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "contrail/model/model_file.h"

namespace contrail::cli {

struct ConcurrencyResult {
  int64_t concurrency = 0;
  double tokens_per_s = 0;      // generated tokens of all requests / wall time (median of reps)
  double per_request_tps = 0;   // tokens_per_s / concurrency
  double wall_s = 0;            // median wall time of one round
  // Decode phase only: tokens after each request's first / time from the last first token to the
  // end (prompt processing excluded; median of reps).
  double decode_tokens_per_s = 0;
};

// Each round submits `c` requests of n_prompt distinct tokens generating n_gen tokens each
// (greedy, EOS ignored) to one Engine and waits for all; median over `reps` rounds after a warm-up.
std::vector<ConcurrencyResult> concurrency_sweep(std::shared_ptr<const ModelFile> model,
                                                 const std::vector<int64_t>& levels, int64_t n_prompt, int64_t n_gen,
                                                 int reps, int n_threads);

}  // namespace contrail::cli
