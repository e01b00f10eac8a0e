// Internal: merge-rank BPE over piece ids, shared by byte-level BPE (GPT-2, Llama 3, Qwen2) and
// SentencePiece vocabularies that come with merges (HF tokenizer.json BPE with byte_fallback).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "contrail/tokenizer/vocab.h"

namespace contrail::detail {

// Piece texts interned as ids: [0, n_vocab) are the vocabulary's tokens; texts that appear in the
// merges (or are added with intern()) but are not tokens get ids from n_vocab up, so merging never
// needs strings. Merge rule i "left right" has rank i (the first of duplicate rules wins).
class MergeTable {
 public:
  // Throws FormatError naming `source` for a rule without a space separating two non-empty parts.
  MergeTable(const VocabData& vocab, const std::string& source);

  int32_t n_vocab() const { return n_vocab_; }
  // Id of a piece text, or -1 if it is neither a token nor interned.
  int32_t find(std::string_view piece) const;
  // Id of a piece text, interning it if needed (construction time only).
  int32_t intern(std::string_view piece);
  std::string_view text(int32_t id) const;

  // A run of bytes [start, start+length) of the word being merged, and its piece id (-1: unknown,
  // never merged).
  struct Symbol {
    int32_t id;
    uint32_t start;
    uint32_t length;
  };
  // Merges adjacent symbols in place, always applying the rule of lowest rank among adjacent pairs
  // (the leftmost pair on ties), until no rule applies - llama.cpp's llm_tokenizer_bpe_session and
  // HF's BPE model. O(n log n) in the number of symbols.
  void apply(std::vector<Symbol>& symbols) const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Rule {
    int32_t rank;
    int32_t result;  // piece id of left+right
  };
  static uint64_t key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }

  const std::vector<std::string>* tokens_;
  int32_t n_vocab_;
  std::unordered_map<std::string, int32_t, Hash, std::equal_to<>> ids_;  // every interned text -> id
  std::vector<std::string> extra_;                                       // texts of ids >= n_vocab
  std::unordered_map<uint64_t, Rule> rules_;                             // (left id, right id) -> rule
};

}  // namespace contrail::detail
