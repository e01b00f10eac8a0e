#include "tokenizer/spm_tokenizer.h"

#include <fmt/format.h>

#include <queue>

#include "contrail/core/error.h"
#include "contrail/core/utf8.h"

namespace contrail::detail {

PieceIndex::PieceIndex(const VocabData& vocab) {
  ids_.reserve(vocab.tokens.size());
  for (size_t i = 0; i < vocab.tokens.size(); ++i)
    if (!vocab.tokens[i].empty()) ids_.emplace(vocab.tokens[i], static_cast<int32_t>(i));

  static constexpr char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    const char name[] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
    int32_t id = find(std::string_view(name, sizeof(name)));
    if (id < 0) {
      const char c = static_cast<char>(b);
      id = find(std::string_view(&c, 1));
    }
    byte_token_[b] = id;
  }
}

int32_t PieceIndex::find(std::string_view piece) const {
  const auto it = ids_.find(piece);
  return it == ids_.end() ? -1 : it->second;
}

namespace {

// A run of bytes of the text, linked to its neighbours; `len` 0 marks a symbol merged away.
struct Symbol {
  int prev;
  int next;
  size_t start;
  size_t len;
};

// A candidate merge of two adjacent symbols into a vocabulary piece.
struct Bigram {
  int left;
  int right;
  float score;
  size_t size;  // byte length of the merged text, to detect stale entries
};

// Priority-queue order: highest score first; on equal scores the leftmost pair first.
struct LowerPriority {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

class SpmSession {
 public:
  SpmSession(const VocabData& vocab, const PieceIndex& index, std::string_view text)
      : vocab_(vocab), index_(index), text_(text) {}

  void run(std::vector<int32_t>& out) {
    // Split into UTF-8 characters; a truncated last sequence keeps the bytes that are there.
    for (size_t off = 0; off < text_.size();) {
      const size_t n = std::min(utf8::lead_length(static_cast<uint8_t>(text_[off])), text_.size() - off);
      const int idx = static_cast<int>(symbols_.size());
      symbols_.push_back({idx - 1, off + n == text_.size() ? -1 : idx + 1, off, n});
      off += n;
    }
    for (int i = 1; i < static_cast<int>(symbols_.size()); ++i) try_add_bigram(i - 1, i);

    while (!queue_.empty()) {
      const Bigram bg = queue_.top();
      queue_.pop();
      Symbol& left = symbols_[bg.left];
      Symbol& right = symbols_[bg.right];
      // Skip pairs where either side was merged into something else since the pair was queued.
      if (left.len == 0 || right.len == 0 || left.len + right.len != bg.size) continue;
      left.len += right.len;
      right.len = 0;
      left.next = right.next;
      if (right.next >= 0) symbols_[right.next].prev = bg.left;
      try_add_bigram(left.prev, bg.left);
      try_add_bigram(bg.left, left.next);
    }

    // Every surviving symbol is either a single character or the result of a merge (which is a
    // piece by construction), so only unknown single characters need the byte fallback.
    for (int i = symbols_.empty() ? -1 : 0; i != -1; i = symbols_[i].next) {
      const Symbol& s = symbols_[i];
      const std::string_view piece = text_.substr(s.start, s.len);
      const int32_t id = index_.find(piece);
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      if (!vocab_.byte_fallback) {
        out.push_back(unknown(piece));
        continue;
      }
      for (const char c : piece) out.push_back(byte_fallback(static_cast<uint8_t>(c)));
    }
  }

 private:
  void try_add_bigram(int left, int right) {
    if (left < 0 || right < 0) return;
    const size_t size = symbols_[left].len + symbols_[right].len;
    const int32_t id = index_.find(text_.substr(symbols_[left].start, size));
    if (id < 0) return;
    const float score = vocab_.scores.empty() ? 0.0f : vocab_.scores[static_cast<size_t>(id)];
    queue_.push({left, right, score, size});
  }

  int32_t unknown(std::string_view piece) const {
    if (vocab_.unk_id >= 0) return vocab_.unk_id;
    throw Error(fmt::format("tokenizer: '{}' is not in the vocabulary, byte fallback is off and the vocabulary has "
                            "no unknown token",
                            piece));
  }

  int32_t byte_fallback(uint8_t b) const {
    const int32_t id = index_.byte_token(b);
    if (id >= 0) return id;
    if (vocab_.unk_id >= 0) return vocab_.unk_id;
    throw Error(fmt::format("tokenizer: byte 0x{:02X} is not in the vocabulary (no <0x{:02X}> token, no one-byte "
                            "piece) and the vocabulary has no unknown token",
                            b, b));
  }

  const VocabData& vocab_;
  const PieceIndex& index_;
  std::string_view text_;
  std::vector<Symbol> symbols_;  // (n_chars) linked list over the text
  std::priority_queue<Bigram, std::vector<Bigram>, LowerPriority> queue_;
};

}  // namespace

void spm_encode(const VocabData& vocab, const PieceIndex& index, std::string_view text, std::vector<int32_t>& out) {
  SpmSession(vocab, index, text).run(out);
}

}  // namespace contrail::detail
