// Model runners: execute one scheduled step (SchedulerOutput) and return the logits the engine
// samples from. The engine sees only this interface, so the whole serving stack can run on the
// real transformer or, in tests, on an arithmetic model (MockRunner in src/engine/mock_runner.h:
// no model, JetStream's approach).
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

}  // namespace contrail::engine
