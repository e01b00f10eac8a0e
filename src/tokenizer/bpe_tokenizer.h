// Internal: the merge-rank tokenizers - byte-level BPE (VocabKind::BytePair, llama.cpp's
// llm_tokenizer_bpe) and SentencePiece vocabularies with merges (HF BPE with byte_fallback).
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "contrail/tokenizer/vocab.h"
#include "tokenizer/bpe_merges.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/spm_tokenizer.h"

namespace contrail::detail {

class BpeEncoder {
 public:
  // `vocab` and `index` must outlive the encoder. Compiles the pre-tokenizer (BytePair) and
  // indexes the merges; throws FormatError naming `source`.
  BpeEncoder(const VocabData& vocab, const PieceIndex& index, const std::string& source);

  // BytePair: tokenizes one raw-text fragment and appends the ids. Ill-formed UTF-8 is handled as
  // llama.cpp does (see prepare_text); then NFC when vocab.normalize_nfc; the pre-tokenizer splits
  // the text into words; a word that is a token is kept whole when vocab.ignore_merges; otherwise
  // its bytes, spelled in the byte-level alphabet, are merged by rank. A merged piece that is not
  // a token (only with inconsistent merges) is emitted the way llama.cpp does: as the one-byte
  // tokens of its text's bytes that exist.
  void encode_byte_level(std::string_view raw, std::vector<int32_t>& out) const;

  // SentencePiece with merges: `text` already has its spaces escaped to U+2581 (and the dummy
  // prefix). Splits into UTF-8 characters (lead-byte lengths, as llm_tokenizer_spm), merges by
  // rank; a character that is not a token becomes its <0xHH> byte tokens when vocab.byte_fallback,
  // else (or when a byte token is missing) vocab.unk_id; throws Error when that is unset.
  void encode_spm(std::string_view text, std::vector<int32_t>& out) const;

 private:
  int32_t unk_or_throw(std::string_view piece) const;

  const VocabData& vocab_;
  const PieceIndex& index_;
  MergeTable merges_;
  std::unique_ptr<PreTokenizer> pre_;  // BytePair only
  std::array<int32_t, 256> byte_piece_{};  // (256) byte -> piece id of its byte-level character
};

}  // namespace contrail::detail
