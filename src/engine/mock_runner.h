// MockRunner: a ModelRunner with arithmetic weights for the engine's tests (no model, JetStream's
// approach). Private to the library and its tests; not installed.
#pragma once
#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include "contrail/engine/runner.h"

namespace contrail::engine {

// A model with arithmetic weights: it keeps one token id per KV row (written through the block
// tables like real K/V) and its logits for a sampled position are a deterministic function of the
// token ids read back through the table: logit[next_token(context)] = 8, the next 7 ids (mod
// n_vocab) 7, 6, ..., 1, every other id 0, so greedy picks next_token(context) and sampling has a
// spread to choose from. Any block-table bug (wrong block, stale prefix hit, missed copy) changes
// what it generates.
class MockRunner final : public ModelRunner {
 public:
  // step_time: each execute() also sleeps this long, so tests can act while requests run.
  MockRunner(int64_t n_vocab, int64_t n_blocks, int64_t block_size,
             std::chrono::microseconds step_time = std::chrono::microseconds(0));
  int64_t n_vocab() const override { return n_vocab_; }
  void execute(const SchedulerOutput& out, const Scheduler& sched, std::vector<float>& logits) override;
  // The token greedy decoding picks after `context` (what the logits favour).
  int32_t next_token(std::span<const int32_t> context) const;

 private:
  int64_t n_vocab_, block_size_;
  std::chrono::microseconds step_time_;
  std::vector<int32_t> rows_;  // (n_blocks * block_size) token id per KV row, -1 = unwritten
};

}  // namespace contrail::engine
