// Model runners: execute one scheduled step (SchedulerOutput) and return the logits the engine
// samples from. The engine sees only this interface, so the whole serving stack can run on the
// arithmetic MockRunner (no model, JetStream's approach) or on the real transformer.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "contrail/core/thread_pool.h"
#include "contrail/engine/scheduler.h"
#include "contrail/model/paged_kv_cache.h"
#include "contrail/model/transformer.h"

namespace contrail::engine {

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  virtual int64_t n_vocab() const = 0;
  // Performs out.copies (copy-on-write) in order, then computes every chunk of `out` (tokens and
  // block tables from `sched`); logits: (number of chunks with sample, n_vocab) in chunk order,
  // resized. Throws on invalid input; the scheduler is not modified.
  virtual void execute(const SchedulerOutput& out, const Scheduler& sched, std::vector<float>& logits) = 0;
};

// The transformer over a PagedKvCache whose blocks mirror the scheduler's BlockManager
// (same n_blocks and block_size): one forward_paged call per step, so every step reads the
// weights once for all its sequences.
class TransformerRunner final : public ModelRunner {
 public:
  TransformerRunner(std::shared_ptr<const ModelFile> model, int64_t n_blocks, int64_t block_size, int n_threads,
                    DType kv_dtype = DType::F32);
  int64_t n_vocab() const override { return transformer_.config().n_vocab; }
  void execute(const SchedulerOutput& out, const Scheduler& sched, std::vector<float>& logits) override;
  const Transformer& transformer() const { return transformer_; }
  const PagedKvCache& cache() const { return cache_; }

 private:
  Transformer transformer_;
  PagedKvCache cache_;
  ThreadPool pool_;
  // step scratch, reused
  std::vector<int32_t> tokens_, pos_, seq_of_, rows_;
  std::vector<ops::PagedSequence> seqs_;
};

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
