#include "tokenizer/bpe_tokenizer.h"

#include <fmt/format.h>

#include "contrail/core/error.h"
#include "contrail/core/utf8.h"
#include "tokenizer/byte_level.h"

namespace contrail::detail {

BpeEncoder::BpeEncoder(const VocabData& vocab, const PieceIndex& index, const std::string& source)
    : vocab_(vocab), index_(index), merges_(vocab, source) {
  if (vocab.kind != VocabKind::BytePair) return;
  pre_ = std::make_unique<PreTokenizer>(vocab.pre_patterns, source);
  for (int b = 0; b < 256; ++b) byte_piece_[b] = merges_.intern(byte_level_char(static_cast<uint8_t>(b)));
}

int32_t BpeEncoder::unk_or_throw(std::string_view piece) const {
  if (vocab_.unk_id >= 0) return vocab_.unk_id;
  throw Error(fmt::format("tokenizer: '{}' is not in the vocabulary ({}) and the vocabulary has no unknown token",
                          piece, vocab_.byte_fallback ? "nor are its byte tokens" : "byte fallback is off"));
}

void BpeEncoder::encode_byte_level(std::string_view raw, std::vector<int32_t>& out) const {
  const PreparedText prepared = prepare_text(raw, vocab_.normalize_nfc);
  const std::string_view text = prepared.text;
  std::vector<MergeTable::Symbol> symbols;  // (bytes of the word)
  std::string spelled;                      // the word in the byte-level alphabet
  for (const PreTokenizer::Piece& piece : pre_->split(prepared.regex_subject)) {
    const std::string_view word = text.substr(piece.offset, piece.length);
    if (vocab_.ignore_merges) {
      spelled.clear();
      append_byte_level(spelled, word);
      if (const int32_t id = index_.find(spelled); id >= 0) {
        out.push_back(id);
        continue;
      }
    }
    symbols.clear();
    for (size_t i = 0; i < word.size(); ++i)
      symbols.push_back({byte_piece_[static_cast<uint8_t>(word[i])], static_cast<uint32_t>(i), 1});
    merges_.apply(symbols);
    for (const MergeTable::Symbol& s : symbols) {
      if (s.id < merges_.n_vocab()) {
        out.push_back(s.id);
        continue;
      }
      for (const char c : merges_.text(s.id))
        if (const int32_t id = index_.find(std::string_view(&c, 1)); id >= 0) out.push_back(id);
    }
  }
}

void BpeEncoder::encode_spm(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<MergeTable::Symbol> symbols;  // (characters of the text)
  for (size_t off = 0; off < text.size();) {
    const size_t n = std::min(utf8::lead_length(static_cast<uint8_t>(text[off])), text.size() - off);
    symbols.push_back({merges_.find(text.substr(off, n)), static_cast<uint32_t>(off), static_cast<uint32_t>(n)});
    off += n;
  }
  merges_.apply(symbols);
  for (const MergeTable::Symbol& s : symbols) {
    if (s.id >= 0 && s.id < merges_.n_vocab()) {
      out.push_back(s.id);
      continue;
    }
    const std::string_view piece = text.substr(s.start, s.length);
    if (!vocab_.byte_fallback) {
      out.push_back(unk_or_throw(piece));
      continue;
    }
    for (const char c : piece) {
      const int32_t id = index_.byte_token(static_cast<uint8_t>(c));
      out.push_back(id >= 0 ? id : unk_or_throw(piece));
    }
  }
}

}  // namespace contrail::detail
