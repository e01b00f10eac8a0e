// Internal: the SentencePiece-style merge tokenizer used for GGUF "llama" vocabularies and llama2.c
// tokenizer.bin files. Not part of the public API (src/ is a private include directory).
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "contrail/tokenizer/vocab.h"

namespace contrail::detail {

// Exact piece text -> token id, plus the byte-fallback token of every byte value.
// Built once from a validated VocabData (duplicate texts were rejected by validate()).
class PieceIndex {
 public:
  explicit PieceIndex(const VocabData& vocab);
  int32_t find(std::string_view piece) const;  // -1 if no token has exactly this text
  // Token for a raw byte: "<0xHH>" if present, else the one-character piece, else -1.
  int32_t byte_token(uint8_t b) const { return byte_token_[b]; }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, int32_t, Hash, std::equal_to<>> ids_;  // (n non-empty pieces)
  std::array<int32_t, 256> byte_token_{};                                 // (256) byte -> id or -1
};

// Tokenizes one text fragment the way llama.cpp's llm_tokenizer_spm does and appends the ids to
// `out`. `text` must already have its spaces escaped to U+2581 (and the dummy prefix added when
// wanted). Algorithm: split into UTF-8 characters (lengths from the lead byte only), then
// repeatedly merge the adjacent pair whose concatenation is a vocabulary piece with the highest
// score (ties: the leftmost pair), and finally emit each remaining symbol as its token, or as
// byte-fallback tokens when it is not a piece (vocab.unk_id instead when !vocab.byte_fallback).
// A byte without a fallback token becomes vocab.unk_id; throws Error if that is unset too.
void spm_encode(const VocabData& vocab, const PieceIndex& index, std::string_view text, std::vector<int32_t>& out);

}  // namespace contrail::detail
