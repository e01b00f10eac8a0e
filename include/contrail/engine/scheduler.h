// Continuous-batching scheduler: plain data in, plain data out. There are no prefill or decode
// phases: every sequence only has a number of computed tokens (K/V in the cache) and a number of
// known tokens (prompt + generated so far); each step computes, for as many sequences as fit,
// the next chunk of known-but-uncomputed tokens, under two explicit budgets:
//   max_batched_tokens -- tokens of all sequences in one forward pass,
//   max_running        -- sequences holding KV blocks at once.
// A sequence whose chunk reaches its last known token gets a token sampled by the runner; a
// prompt longer than the remaining budget is computed in chunks over several steps (chunked
// prefill) while running sequences keep decoding.
//
// Order and fairness: running sequences are served first, oldest admission first; then waiting
// ones in arrival order (preempted sequences go back to the front). When the KV blocks run out,
// the most recently admitted running sequence is preempted: its blocks are freed and it is
// recomputed later from its known tokens (prompt + what it generated), which prefix caching
// usually makes cheap. A waiting sequence is admitted only when its chunk's blocks are
// available: admission never preempts.
//
// Invariants (checked by the tests after every step): a running sequence holds blocks for at
// least its computed tokens; a waiting one holds none; finish() frees everything; with no
// sequences left, every block is free or cached.
// Not thread-safe: the engine's step loop owns it.
#pragma once
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "contrail/engine/block_manager.h"

namespace contrail::engine {

// One sequence of the scheduler: a request choice (a request with n choices has n sequences; the
// engine maps them to its RequestId).
using SeqId = int64_t;

struct SchedulerConfig {
  int64_t max_batched_tokens = 512;  // tokens per forward pass, all sequences together
  int64_t max_running = 16;          // sequences admitted at once
  int64_t max_waiting = 256;         // queued sequences; add() refuses beyond (admission control)
  int64_t max_seq_len = 4096;        // known tokens per sequence (the model's context)

  // Throws InvalidArgument naming the field, its value and the limit.
  void validate() const;
};

// One sequence's chunk in a step: tokens [first_pos, first_pos + n_tokens) of its known tokens
// are computed (their K/V written to the sequence's blocks at those positions).
struct ScheduledChunk {
  SeqId id = 0;
  int64_t first_pos = 0;
  int64_t n_tokens = 0;
  bool sample = false;  // the chunk ends at the last known token: sample the next one
};

struct SchedulerOutput {
  std::vector<ScheduledChunk> chunks;   // in the order the runner should lay out the batch
  std::vector<BlockCopy> copies;        // copy-on-write block copies to do before the forward pass
  std::vector<SeqId> preempted;     // sequences sent back to waiting in this step
  int64_t n_tokens() const;
  bool empty() const { return chunks.empty(); }
};

struct SchedulerStats {
  int64_t prefix_query_tokens = 0;  // prompt tokens of admitted sequences (first admission)
  int64_t prefix_hit_tokens = 0;    // of those, served from the prefix cache
  int64_t preemptions = 0;
};

enum class AddStatus {
  Ok,
  QueueFull,  // max_waiting sequences are waiting: retry later (HTTP 429)
};

class Scheduler {
 public:
  // `blocks` must outlive the scheduler; the scheduler is its only user.
  Scheduler(const SchedulerConfig& config, BlockManager& blocks);

  const SchedulerConfig& config() const { return config_; }

  // Queues a new sequence with its prompt; it may generate until it holds max_total known
  // tokens (prompt + max new tokens). A sequence holding max_total tokens is complete: it is not
  // scheduled again and waits for finish(). Throws InvalidArgument for a duplicate id, an empty
  // prompt, max_total <= prompt size, or max_total beyond max_seq_len or beyond what the whole
  // KV pool can hold (naming the values and limits).
  AddStatus add(SeqId id, std::vector<int32_t> prompt, int64_t max_total);

  // Starts `child` as a copy of `parent` right after update() sampled parent's newest token:
  // the child shares parent's computed tokens and their KV blocks (copy-on-write) and continues
  // with `first_token` instead, e.g. for the n > 1 choices of one prompt sampled from the same
  // logits. The child runs at once, even beyond max_running (it is not a new admission).
  // Throws InvalidArgument if parent is not running with exactly one uncomputed token or child
  // exists.
  void fork(SeqId parent, SeqId child, int32_t first_token);

  // Plans one step. An empty output means there is nothing to do (or nothing fits yet).
  // Fairness: running sequences are served oldest first; when blocks run out, the one with the
  // most remaining work (max_total - known) not yet scheduled in the step is preempted, so a short
  // request is not held up by long ones filling the pool. Waiting sequences are admitted in
  // order, but one that does not fit yet is passed over (at most kMaxPassOvers times) by those
  // behind it.
  SchedulerOutput schedule();
  static constexpr int kMaxPassOvers = 256;

  // Applies the runner's results: every chunk of `out` was computed, and sampled[i] is the token
  // sampled for the i-th chunk with sample == true (in chunk order). Computed full blocks enter
  // the prefix cache.
  void update(const SchedulerOutput& out, std::span<const int32_t> sampled);

  // Removes a sequence (finished, stopped or cancelled) and frees its blocks. Unknown ids are
  // ignored (a request may finish while its cancellation is in flight).
  void finish(SeqId id);

  // Known tokens (prompt + generated) of a sequence; throws InvalidArgument for unknown ids.
  std::span<const int32_t> tokens(SeqId id) const;
  int64_t n_prompt(SeqId id) const;
  int64_t n_computed(SeqId id) const;
  int64_t max_total(SeqId id) const;
  bool contains(SeqId id) const { return seqs_.count(id) != 0; }

  int64_t n_running() const { return static_cast<int64_t>(running_.size()); }
  int64_t n_waiting() const { return static_cast<int64_t>(waiting_.size()); }
  const SchedulerStats& stats() const { return stats_; }
  const BlockManager& blocks() const { return *blocks_; }

 private:
  struct Seq {
    std::vector<int32_t> tokens;  // (n_known) prompt then generated
    int64_t n_prompt = 0;
    int64_t n_computed = 0;
    int64_t max_total = 0;
    bool running = false;
    bool admitted_before = false;  // prefix statistics count first admissions only
    int passed_over = 0;           // admissions of later sequences while this one waited first
  };
  Seq& get(SeqId id, const char* where);
  const Seq& get(SeqId id, const char* where) const;
  void preempt(SeqId id, SchedulerOutput& out);

  SchedulerConfig config_;
  BlockManager* blocks_;
  std::unordered_map<SeqId, Seq> seqs_;
  std::vector<SeqId> running_;   // admission order, oldest first
  std::deque<SeqId> waiting_;    // arrival order; preempted ones at the front
  SchedulerStats stats_;
};

}  // namespace contrail::engine
