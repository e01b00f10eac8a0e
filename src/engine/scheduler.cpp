#include "contrail/engine/scheduler.h"

#include <fmt/format.h>

#include <algorithm>

#include "contrail/core/error.h"

namespace contrail::engine {

void SchedulerConfig::validate() const {
  auto check = [](const char* name, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi)
      throw InvalidArgument(fmt::format("scheduler config: {} = {} outside [{}, {}]", name, v, lo, hi));
  };
  check("max_batched_tokens", max_batched_tokens, 1, int64_t(1) << 20);
  check("max_running", max_running, 1, 1 << 16);
  check("max_waiting", max_waiting, 0, int64_t(1) << 24);
  check("max_seq_len", max_seq_len, 1, int64_t(1) << 24);
}

int64_t SchedulerOutput::n_tokens() const {
  int64_t n = 0;
  for (const ScheduledChunk& c : chunks) n += c.n_tokens;
  return n;
}

Scheduler::Scheduler(const SchedulerConfig& config, BlockManager& blocks) : config_(config), blocks_(&blocks) {
  config_.validate();
}

Scheduler::Seq& Scheduler::get(SeqId id, const char* where) {
  const auto it = seqs_.find(id);
  if (it == seqs_.end()) throw InvalidArgument(fmt::format("{}: unknown sequence {}", where, id));
  return it->second;
}

const Scheduler::Seq& Scheduler::get(SeqId id, const char* where) const {
  const auto it = seqs_.find(id);
  if (it == seqs_.end()) throw InvalidArgument(fmt::format("{}: unknown sequence {}", where, id));
  return it->second;
}

AddStatus Scheduler::add(SeqId id, std::vector<int32_t> prompt, int64_t max_total) {
  if (seqs_.count(id)) throw InvalidArgument(fmt::format("add: sequence {} already exists", id));
  const auto n = static_cast<int64_t>(prompt.size());
  if (n == 0) throw InvalidArgument(fmt::format("add: sequence {} has an empty prompt", id));
  if (max_total <= n)
    throw InvalidArgument(fmt::format("add: sequence {}: max_total {} leaves no room for a new token after the {}-token "
                                      "prompt",
                                      id, max_total, n));
  if (max_total > config_.max_seq_len)
    throw InvalidArgument(fmt::format("add: sequence {}: prompt {} + new tokens = {} tokens exceed max_seq_len {}", id,
                                      n, max_total, config_.max_seq_len));
  const int64_t pool_tokens = blocks_->n_blocks() * blocks_->block_size();
  if (max_total > pool_tokens)
    throw InvalidArgument(fmt::format("add: sequence {}: {} tokens exceed the whole KV pool ({} blocks of {} tokens)",
                                      id, max_total, blocks_->n_blocks(), blocks_->block_size()));
  if (n_waiting() >= config_.max_waiting) return AddStatus::QueueFull;
  Seq& s = seqs_[id];
  s.tokens = std::move(prompt);
  s.n_prompt = n;
  s.max_total = max_total;
  waiting_.push_back(id);
  return AddStatus::Ok;
}

void Scheduler::fork(SeqId parent, SeqId child, int32_t first_token) {
  if (seqs_.count(child)) throw InvalidArgument(fmt::format("fork: sequence {} already exists", child));
  const Seq& p = get(parent, "fork");
  if (!p.running || static_cast<int64_t>(p.tokens.size()) != p.n_computed + 1)
    throw InvalidArgument(fmt::format("fork: parent {} must be running with exactly one uncomputed token "
                                      "(has {} known, {} computed)",
                                      parent, p.tokens.size(), p.n_computed));
  Seq c = p;
  c.tokens.back() = first_token;
  blocks_->fork(parent, child);
  seqs_.emplace(child, std::move(c));
  running_.push_back(child);
}

void Scheduler::preempt(SeqId id, SchedulerOutput& out) {
  Seq& s = seqs_.at(id);
  blocks_->free_sequence(id);
  s.n_computed = 0;
  s.running = false;
  running_.erase(std::find(running_.begin(), running_.end(), id));
  waiting_.push_front(id);
  out.preempted.push_back(id);
  ++stats_.preemptions;
}

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput out;
  int64_t budget = config_.max_batched_tokens;

  // Running sequences first, oldest first. When blocks run out, the sequence with the most
  // remaining work (max_total - known; the newest among equals) among those not yet scheduled in
  // this step makes room, so short requests finish instead of being preempted by long ones.
  auto remaining = [&](SeqId id) {
    const Seq& x = seqs_.at(id);
    return x.max_total - static_cast<int64_t>(x.tokens.size());
  };
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    const SeqId id = running_[i];
    Seq& s = seqs_.at(id);
    const auto n_known = static_cast<int64_t>(s.tokens.size());
    const int64_t n = std::min(n_known - s.n_computed, budget);
    if (n <= 0 || n_known >= s.max_total) {
      ++i;  // nothing to compute, or complete and waiting for finish()
      continue;
    }
    bool self_preempted = false;
    while (!blocks_->ensure_capacity(id, s.n_computed, s.n_computed + n)) {
      size_t v = running_.size() - 1;
      for (size_t j = running_.size() - 1; j > i; --j)
        if (remaining(running_[j - 1]) > remaining(running_[v])) v = j - 1;
      const SeqId victim = running_[v];
      preempt(victim, out);
      if (victim == id) {
        self_preempted = true;
        break;
      }
    }
    if (self_preempted) continue;  // running_[i] is now the next sequence
    out.chunks.push_back({id, s.n_computed, n, s.n_computed + n == n_known});
    budget -= n;
    ++i;
  }

  // Then waiting sequences in order, as long as their chunk fits without preempting anyone; one
  // that does not fit is passed over by the ones behind it (bounded, so it cannot starve). Those
  // preempted in this step wait for the next.
  for (auto it = waiting_.begin(); it != waiting_.end() && budget > 0 && n_running() < config_.max_running;) {
    const SeqId id = *it;
    Seq& s = seqs_.at(id);
    if (std::find(out.preempted.begin(), out.preempted.end(), id) != out.preempted.end()) {
      ++it;
      continue;
    }
    const auto n_known = static_cast<int64_t>(s.tokens.size());
    s.n_computed = blocks_->attach_cached_prefix(id, s.tokens);
    const int64_t n = std::min(n_known - s.n_computed, budget);
    if (!blocks_->ensure_capacity(id, s.n_computed, s.n_computed + n)) {
      blocks_->free_sequence(id);
      s.n_computed = 0;
      if (++s.passed_over > kMaxPassOvers) break;  // strict order until it gets in
      ++it;
      continue;
    }
    if (!s.admitted_before) {
      stats_.prefix_query_tokens += s.n_prompt;
      stats_.prefix_hit_tokens += std::min(s.n_computed, s.n_prompt);
      s.admitted_before = true;
    }
    s.passed_over = 0;
    it = waiting_.erase(it);
    running_.push_back(id);
    s.running = true;
    out.chunks.push_back({id, s.n_computed, n, s.n_computed + n == n_known});
    budget -= n;
  }
  out.copies = blocks_->take_pending_copies();
  return out;
}

void Scheduler::update(const SchedulerOutput& out, std::span<const int32_t> sampled) {
  size_t k = 0;
  for (const ScheduledChunk& c : out.chunks) {
    Seq& s = get(c.id, "update");
    if (c.first_pos != s.n_computed || c.first_pos + c.n_tokens > static_cast<int64_t>(s.tokens.size()))
      throw InvalidArgument(fmt::format("update: chunk [{}, {}) of sequence {} does not continue its {} computed of {} "
                                        "known tokens",
                                        c.first_pos, c.first_pos + c.n_tokens, c.id, s.n_computed, s.tokens.size()));
    s.n_computed = c.first_pos + c.n_tokens;
    blocks_->commit(c.id, s.tokens, s.n_computed);
    if (c.sample) {
      if (k >= sampled.size())
        throw InvalidArgument(fmt::format("update: {} sampled tokens for more sampling chunks", sampled.size()));
      s.tokens.push_back(sampled[k++]);
    }
  }
  if (k != sampled.size())
    throw InvalidArgument(fmt::format("update: {} sampled tokens given, {} chunks sample", sampled.size(), k));
}

void Scheduler::finish(SeqId id) {
  const auto it = seqs_.find(id);
  if (it == seqs_.end()) return;
  blocks_->free_sequence(id);
  if (it->second.running) {
    running_.erase(std::find(running_.begin(), running_.end(), id));
  } else {
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), id));
  }
  seqs_.erase(it);
}

std::span<const int32_t> Scheduler::tokens(SeqId id) const { return get(id, "tokens").tokens; }
int64_t Scheduler::n_prompt(SeqId id) const { return get(id, "n_prompt").n_prompt; }
int64_t Scheduler::n_computed(SeqId id) const { return get(id, "n_computed").n_computed; }
int64_t Scheduler::max_total(SeqId id) const { return get(id, "max_total").max_total; }

}  // namespace contrail::engine
