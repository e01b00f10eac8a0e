// Paged KV-cache bookkeeping: which physical KV blocks hold which sequence's tokens. The manager
// sees token ids (for prefix hashing), token counts and block ids, never tensors; the model
// runner owns the K/V memory and reads a sequence's block table to find its rows.
//
// Invariants:
// - Every block is in exactly one state: in use (ref >= 1), cached (ref 0 but holding a full
//   block registered in the prefix cache: reusable by a prefix hit, evicted least recently freed
//   first when a block is needed), or free (ref 0, no content worth keeping).
// - n_free() + n_cached() + n_used() == n_blocks(); when no sequence is attached, n_used() == 0.
// - Token t of a sequence lives in block table[t / block_size] at row t % block_size.
// - A full block's hash chains the hash of the block before it with its block_size token ids, so
//   equal hashes mean equal prefixes (up to 64-bit collisions, which are checked against the
//   stored tokens and then treated as misses). Only full blocks whose K/V have been written
//   (commit()) enter the prefix cache.
// - A block whose ref > 1 is never written: before a sequence appends into a shared partial
//   block, ensure_capacity() gives it a private copy and records the copy for the runner
//   (copy-on-write; happens after fork()).
// Not thread-safe: the engine's step loop owns it.
#pragma once
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

namespace contrail::engine {

using BlockId = int32_t;
using SeqId = int64_t;

// K/V rows the runner must copy, whole block src -> dst, before the next forward pass.
struct BlockCopy {
  BlockId src;
  BlockId dst;
};

struct BlockManagerStats {
  int64_t evictions = 0;           // cached blocks reused for other content
  int64_t copies = 0;              // copy-on-write block copies
};

class BlockManager {
 public:
  // Throws InvalidArgument unless 1 <= n_blocks <= 2^30 and 1 <= block_size <= 4096.
  BlockManager(int64_t n_blocks, int64_t block_size, bool enable_prefix_cache = true);

  int64_t n_blocks() const { return static_cast<int64_t>(blocks_.size()); }
  int64_t block_size() const { return block_size_; }
  int64_t n_free() const { return n_free_; }
  int64_t n_cached() const { return static_cast<int64_t>(lru_size_) - n_free_; }
  int64_t n_used() const { return n_blocks() - static_cast<int64_t>(lru_size_); }
  // Blocks a new allocation can take: free plus evictable cached ones.
  int64_t n_available() const { return static_cast<int64_t>(lru_size_); }
  const BlockManagerStats& stats() const { return stats_; }

  // Blocks needed to hold n_tokens tokens.
  int64_t blocks_for(int64_t n_tokens) const { return (n_tokens + block_size_ - 1) / block_size_; }

  // For a sequence that holds no blocks yet: attaches the longest run of leading full blocks of
  // `tokens` found in the prefix cache and returns how many tokens they cover. At most
  // tokens.size() - 1 tokens are served, so the caller always computes at least the last token
  // (whose logits it needs). Returns 0 when prefix caching is off. Throws InvalidArgument if
  // the sequence already holds blocks.
  int64_t attach_cached_prefix(SeqId seq, std::span<const int32_t> tokens);

  // Makes the sequence's table hold at least blocks_for(n_tokens) blocks, where tokens
  // [n_written, n_tokens) are about to be written. If the block containing position n_written is
  // shared (ref > 1) it is replaced by a private copy first (copy-on-write, see
  // take_pending_copies()). Returns false and changes nothing when there are not enough
  // available blocks. Throws InvalidArgument if n_written exceeds the sequence's capacity or
  // n_tokens < n_written.
  bool ensure_capacity(SeqId seq, int64_t n_written, int64_t n_tokens);

  // Number of blocks ensure_capacity(seq, n_written, n_tokens) would take from the pool.
  int64_t blocks_needed(SeqId seq, int64_t n_written, int64_t n_tokens) const;

  // Records that K/V for tokens[0, n_computed) of the sequence are written: full blocks among
  // them enter the prefix cache. `tokens` is the sequence's whole token list so far.
  void commit(SeqId seq, std::span<const int32_t> tokens, int64_t n_computed);

  // child shares every block of parent (ref + 1 each); child must hold no blocks. Used for n > 1
  // choices of one prompt.
  void fork(SeqId parent, SeqId child);

  // Releases every block of the sequence (ref - 1 each). Blocks reaching ref 0 become cached
  // (registered full blocks, most recently freed last in the eviction order) or free. Unknown
  // sequences are ignored (idempotent).
  void free_sequence(SeqId seq);

  // Block table of a sequence (empty for an unknown sequence).
  std::span<const BlockId> block_table(SeqId seq) const;
  bool has_sequence(SeqId seq) const { return tables_.count(seq) != 0; }
  int32_t ref_count(BlockId b) const { return blocks_.at(static_cast<size_t>(b)).ref; }

  // Copies recorded by ensure_capacity() since the last call; the runner performs them in order.
  std::vector<BlockCopy> take_pending_copies();

  // Drops every cached (unreferenced) block from the prefix cache.
  void reset_prefix_cache();

 private:
  static constexpr BlockId kNone = -1;
  struct Block {
    int32_t ref = 0;
    uint64_t hash = 0;
    bool hashed = false;                 // registered in cached_
    std::vector<int32_t> tokens;         // (block_size) ids of a hashed block, for collision checks
    BlockId lru_prev = kNone, lru_next = kNone;  // links in the available list while ref == 0
  };
  struct Table {
    std::vector<BlockId> blocks;
    int64_t n_hashed = 0;  // leading blocks already committed to the prefix cache
    uint64_t last_hash = 0;
  };

  BlockId take_block();                 // from the available list head; evicts a cached block
  void release_block(BlockId b);        // ref - 1; at 0 appends to the available list
  void lru_remove(BlockId b);
  void lru_push_back(BlockId b);
  void lru_push_front(BlockId b);
  void unhash(BlockId b);
  uint64_t chain_hash(uint64_t parent, std::span<const int32_t> tokens) const;

  int64_t block_size_;
  bool prefix_cache_;
  std::vector<Block> blocks_;
  // Available blocks (ref 0) in eviction order: free blocks first (pushed to the front), then
  // cached blocks from least to most recently freed.
  BlockId lru_head_ = kNone, lru_tail_ = kNone;
  size_t lru_size_ = 0;
  int64_t n_free_ = 0;  // available blocks that hold no cached content
  std::unordered_map<uint64_t, BlockId> cached_;  // hash -> block
  std::unordered_map<SeqId, Table> tables_;
  std::vector<BlockCopy> pending_copies_;
  BlockManagerStats stats_;
};

}  // namespace contrail::engine
