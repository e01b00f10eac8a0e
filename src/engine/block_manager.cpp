#include "contrail/engine/block_manager.h"

#include <fmt/format.h>

#include <algorithm>

#include "contrail/core/error.h"

namespace contrail::engine {
namespace {

uint64_t mix64(uint64_t x) {  // splitmix64 finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

}  // namespace

BlockManager::BlockManager(int64_t n_blocks, int64_t block_size, bool enable_prefix_cache)
    : block_size_(block_size), prefix_cache_(enable_prefix_cache) {
  if (n_blocks < 1 || n_blocks > (int64_t(1) << 30))
    throw InvalidArgument(fmt::format("BlockManager: n_blocks {} outside [1, 2^30]", n_blocks));
  if (block_size < 1 || block_size > 4096)
    throw InvalidArgument(fmt::format("BlockManager: block_size {} outside [1, 4096]", block_size));
  blocks_.resize(static_cast<size_t>(n_blocks));
  for (BlockId b = static_cast<BlockId>(n_blocks) - 1; b >= 0; --b) lru_push_front(b);
  n_free_ = n_blocks;
}

uint64_t BlockManager::chain_hash(uint64_t parent, std::span<const int32_t> tokens) const {
  uint64_t h = mix64(parent ^ 0x9e3779b97f4a7c15ull);
  for (const int32_t t : tokens) h = mix64(h ^ static_cast<uint32_t>(t));
  return h;
}

void BlockManager::lru_remove(BlockId b) {
  Block& B = blocks_[static_cast<size_t>(b)];
  (B.lru_prev == kNone ? lru_head_ : blocks_[static_cast<size_t>(B.lru_prev)].lru_next) = B.lru_next;
  (B.lru_next == kNone ? lru_tail_ : blocks_[static_cast<size_t>(B.lru_next)].lru_prev) = B.lru_prev;
  B.lru_prev = B.lru_next = kNone;
  --lru_size_;
}

void BlockManager::lru_push_back(BlockId b) {
  Block& B = blocks_[static_cast<size_t>(b)];
  B.lru_prev = lru_tail_;
  B.lru_next = kNone;
  (lru_tail_ == kNone ? lru_head_ : blocks_[static_cast<size_t>(lru_tail_)].lru_next) = b;
  lru_tail_ = b;
  ++lru_size_;
}

void BlockManager::lru_push_front(BlockId b) {
  Block& B = blocks_[static_cast<size_t>(b)];
  B.lru_prev = kNone;
  B.lru_next = lru_head_;
  (lru_head_ == kNone ? lru_tail_ : blocks_[static_cast<size_t>(lru_head_)].lru_prev) = b;
  lru_head_ = b;
  ++lru_size_;
}

void BlockManager::unhash(BlockId b) {
  Block& B = blocks_[static_cast<size_t>(b)];
  if (!B.hashed) return;
  const auto it = cached_.find(B.hash);
  if (it != cached_.end() && it->second == b) cached_.erase(it);
  B.hashed = false;
  B.tokens.clear();
}

BlockId BlockManager::take_block() {
  const BlockId b = lru_head_;  // callers checked n_available()
  Block& B = blocks_[static_cast<size_t>(b)];
  lru_remove(b);
  if (B.hashed) {
    unhash(b);
    ++stats_.evictions;
  } else {
    --n_free_;
  }
  B.ref = 1;
  return b;
}

void BlockManager::release_block(BlockId b) {
  Block& B = blocks_[static_cast<size_t>(b)];
  if (--B.ref > 0) return;
  if (B.hashed) {
    lru_push_back(b);  // most recently freed: evicted last
  } else {
    lru_push_front(b);
    ++n_free_;
  }
}

int64_t BlockManager::attach_cached_prefix(SeqId seq, std::span<const int32_t> tokens) {
  Table& t = tables_[seq];
  if (!t.blocks.empty())
    throw InvalidArgument(fmt::format("attach_cached_prefix: sequence {} already holds {} blocks", seq,
                                      t.blocks.size()));
  if (!prefix_cache_ || tokens.empty()) return 0;
  const int64_t max_blocks = (static_cast<int64_t>(tokens.size()) - 1) / block_size_;
  uint64_t h = 0;
  for (int64_t i = 0; i < max_blocks; ++i) {
    const auto chunk = tokens.subspan(static_cast<size_t>(i * block_size_), static_cast<size_t>(block_size_));
    const uint64_t hi = chain_hash(h, chunk);
    const auto it = cached_.find(hi);
    if (it == cached_.end()) break;
    Block& B = blocks_[static_cast<size_t>(it->second)];
    if (!std::equal(chunk.begin(), chunk.end(), B.tokens.begin(), B.tokens.end())) break;  // hash collision
    if (B.ref == 0) lru_remove(it->second);
    ++B.ref;
    t.blocks.push_back(it->second);
    h = hi;
  }
  t.n_hashed = static_cast<int64_t>(t.blocks.size());
  t.last_hash = h;
  return t.n_hashed * block_size_;
}

int64_t BlockManager::blocks_needed(SeqId seq, int64_t n_written, int64_t n_tokens) const {
  const auto it = tables_.find(seq);
  const int64_t have = it == tables_.end() ? 0 : static_cast<int64_t>(it->second.blocks.size());
  const int64_t want = blocks_for(n_tokens);
  int64_t need = std::max<int64_t>(0, want - have);
  if (it != tables_.end())
    for (int64_t i = n_written / block_size_; i < std::min(have, want); ++i)
      if (blocks_[static_cast<size_t>(it->second.blocks[static_cast<size_t>(i)])].ref > 1) ++need;
  return need;
}

bool BlockManager::ensure_capacity(SeqId seq, int64_t n_written, int64_t n_tokens) {
  Table& t = tables_[seq];
  const int64_t have = static_cast<int64_t>(t.blocks.size());
  if (n_written < 0 || n_written > have * block_size_)
    throw InvalidArgument(fmt::format("ensure_capacity: sequence {} has written {} tokens but holds only {} blocks "
                                      "of {} tokens",
                                      seq, n_written, have, block_size_));
  if (n_tokens < n_written)
    throw InvalidArgument(
        fmt::format("ensure_capacity: sequence {}: n_tokens {} < n_written {}", seq, n_tokens, n_written));
  if (blocks_needed(seq, n_written, n_tokens) > n_available()) return false;
  const int64_t want = blocks_for(n_tokens);
  // Copy-on-write: blocks about to be written must be private.
  for (int64_t i = n_written / block_size_; i < std::min(have, want); ++i) {
    BlockId& slot = t.blocks[static_cast<size_t>(i)];
    if (blocks_[static_cast<size_t>(slot)].ref <= 1) continue;
    const BlockId fresh = take_block();
    if (i * block_size_ < n_written) {  // holds rows written before: the runner copies them
      pending_copies_.push_back({slot, fresh});
      ++stats_.copies;
    }
    release_block(slot);
    slot = fresh;
  }
  while (static_cast<int64_t>(t.blocks.size()) < want) t.blocks.push_back(take_block());
  return true;
}

void BlockManager::commit(SeqId seq, std::span<const int32_t> tokens, int64_t n_computed) {
  if (!prefix_cache_) return;
  const auto it = tables_.find(seq);
  if (it == tables_.end()) return;
  Table& t = it->second;
  const int64_t n = std::min<int64_t>(n_computed, static_cast<int64_t>(tokens.size()));
  const int64_t full = std::min<int64_t>(n / block_size_, static_cast<int64_t>(t.blocks.size()));
  for (int64_t i = t.n_hashed; i < full; ++i) {
    const auto chunk = tokens.subspan(static_cast<size_t>(i * block_size_), static_cast<size_t>(block_size_));
    const uint64_t h = chain_hash(t.last_hash, chunk);
    const BlockId b = t.blocks[static_cast<size_t>(i)];
    Block& B = blocks_[static_cast<size_t>(b)];
    // A block already registered keeps its entry; content another block already caches is not
    // registered twice (the duplicate is freed normally later).
    if (!B.hashed && cached_.count(h) == 0) {
      B.hashed = true;
      B.hash = h;
      B.tokens.assign(chunk.begin(), chunk.end());
      cached_.emplace(h, b);
    }
    t.n_hashed = i + 1;
    t.last_hash = h;
  }
}

void BlockManager::fork(SeqId parent, SeqId child) {
  const auto it = tables_.find(parent);
  if (it == tables_.end()) throw InvalidArgument(fmt::format("fork: unknown parent sequence {}", parent));
  if (tables_.count(child) && !tables_[child].blocks.empty())
    throw InvalidArgument(fmt::format("fork: child sequence {} already holds blocks", child));
  Table copy = it->second;  // copied before tables_[child] may rehash the map
  for (const BlockId b : copy.blocks) ++blocks_[static_cast<size_t>(b)].ref;
  tables_[child] = std::move(copy);
}

void BlockManager::free_sequence(SeqId seq) {
  const auto it = tables_.find(seq);
  if (it == tables_.end()) return;
  // Last block first: the prefix's head is freed last and so evicted last.
  for (auto b = it->second.blocks.rbegin(); b != it->second.blocks.rend(); ++b) release_block(*b);
  tables_.erase(it);
}

std::span<const BlockId> BlockManager::block_table(SeqId seq) const {
  const auto it = tables_.find(seq);
  if (it == tables_.end()) return {};
  return it->second.blocks;
}

std::vector<BlockCopy> BlockManager::take_pending_copies() {
  std::vector<BlockCopy> out;
  out.swap(pending_copies_);
  return out;
}

void BlockManager::reset_prefix_cache() {
  for (size_t b = 0; b < blocks_.size(); ++b) unhash(static_cast<BlockId>(b));
  cached_.clear();
  n_free_ = static_cast<int64_t>(lru_size_);
}

}  // namespace contrail::engine
