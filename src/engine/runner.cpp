#include "contrail/engine/runner.h"
#include "engine/mock_runner.h"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "contrail/core/error.h"

namespace contrail::engine {

TransformerRunner::TransformerRunner(std::shared_ptr<const ModelFile> model, int64_t n_blocks, int64_t block_size,
                                     int n_threads, DType kv_dtype)
    : transformer_(std::move(model)), cache_(transformer_.config(), n_blocks, block_size, kv_dtype), pool_(n_threads) {}

void TransformerRunner::execute(const SchedulerOutput& out, const Scheduler& sched, std::vector<float>& logits) {
  for (const BlockCopy& c : out.copies) cache_.copy_block(c.src, c.dst);
  tokens_.clear(), pos_.clear(), seq_of_.clear(), rows_.clear(), seqs_.clear();
  for (const ScheduledChunk& c : out.chunks) {
    const auto known = sched.tokens(c.id);
    const auto table = sched.blocks().block_table(c.id);
    const auto idx = static_cast<int32_t>(seqs_.size());
    seqs_.push_back({table, c.first_pos + c.n_tokens});
    for (int64_t p = c.first_pos; p < c.first_pos + c.n_tokens; ++p) {
      tokens_.push_back(known[static_cast<size_t>(p)]);
      pos_.push_back(static_cast<int32_t>(p));
      seq_of_.push_back(idx);
    }
    if (c.sample) rows_.push_back(static_cast<int32_t>(tokens_.size() - 1));
  }
  if (tokens_.empty()) throw InvalidArgument("runner: empty step");
  transformer_.forward_paged({tokens_, pos_, seq_of_, seqs_, rows_}, cache_, pool_, logits);
}

MockRunner::MockRunner(int64_t n_vocab, int64_t n_blocks, int64_t block_size, std::chrono::microseconds step_time)
    : n_vocab_(n_vocab), block_size_(block_size), step_time_(step_time),
      rows_(static_cast<size_t>(n_blocks * block_size), -1) {
  if (n_vocab < 8) throw InvalidArgument(fmt::format("mock runner: n_vocab {} must be >= 8", n_vocab));
}

int32_t MockRunner::next_token(std::span<const int32_t> context) const {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the ids
  for (const int32_t t : context) h = (h ^ static_cast<uint32_t>(t)) * 1099511628211ull;
  // Final mix (murmur3's fmix64): without it h % n_vocab for a power-of-two vocabulary depends only
  // on the low bits, which the last token can cancel (a fixed point).
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return static_cast<int32_t>(h % static_cast<uint64_t>(n_vocab_));
}

void MockRunner::execute(const SchedulerOutput& out, const Scheduler& sched, std::vector<float>& logits) {
  if (step_time_.count() > 0) std::this_thread::sleep_for(step_time_);
  for (const BlockCopy& c : out.copies)
    std::copy_n(rows_.begin() + c.src * block_size_, block_size_, rows_.begin() + c.dst * block_size_);
  logits.clear();
  std::vector<int32_t> ctx;
  for (const ScheduledChunk& c : out.chunks) {
    const auto table = sched.blocks().block_table(c.id);
    const auto known = sched.tokens(c.id);
    for (int64_t p = c.first_pos; p < c.first_pos + c.n_tokens; ++p)
      rows_[static_cast<size_t>(table[static_cast<size_t>(p / block_size_)] * block_size_ + p % block_size_)] =
          known[static_cast<size_t>(p)];
    if (!c.sample) continue;
    ctx.clear();  // read back through the table, as attention would
    for (int64_t p = 0; p < c.first_pos + c.n_tokens; ++p)
      ctx.push_back(rows_[static_cast<size_t>(table[static_cast<size_t>(p / block_size_)] * block_size_ + p % block_size_)]);
    const int32_t next = next_token(ctx);
    const size_t base = logits.size();
    logits.resize(base + static_cast<size_t>(n_vocab_), 0.0f);
    for (int k = 0; k < 8; ++k) logits[base + static_cast<size_t>((next + k) % n_vocab_)] = static_cast<float>(8 - k);
  }
}

}  // namespace contrail::engine
