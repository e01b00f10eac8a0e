#include "tokenizer/bpe_merges.h"

#include <fmt/format.h>

#include <queue>

#include "contrail/core/error.h"

namespace contrail::detail {

MergeTable::MergeTable(const VocabData& vocab, const std::string& source)
    : tokens_(&vocab.tokens), n_vocab_(static_cast<int32_t>(vocab.tokens.size())) {
  ids_.reserve(vocab.tokens.size() + vocab.merges.size() / 8);
  for (size_t i = 0; i < vocab.tokens.size(); ++i)
    if (!vocab.tokens[i].empty()) ids_.emplace(vocab.tokens[i], static_cast<int32_t>(i));
  rules_.reserve(vocab.merges.size());
  std::string joined;
  for (size_t i = 0; i < vocab.merges.size(); ++i) {
    const std::string_view rule = vocab.merges[i];
    // As llama.cpp: the separator is the first space after the first character, so a left part
    // may itself be a space in vocabularies that keep raw spaces.
    const size_t sep = rule.size() > 1 ? rule.find(' ', 1) : std::string_view::npos;
    if (sep == std::string_view::npos || sep + 1 >= rule.size())
      throw FormatError(fmt::format("{}: merge rule {} '{}' is not two pieces separated by a space", source, i, rule));
    if (i > static_cast<size_t>(INT32_MAX))
      throw FormatError(fmt::format("{}: {} merge rules, more than {}", source, vocab.merges.size(), INT32_MAX));
    const int32_t left = intern(rule.substr(0, sep));
    const int32_t right = intern(rule.substr(sep + 1));
    joined.assign(rule.substr(0, sep));
    joined.append(rule.substr(sep + 1));
    rules_.emplace(key(left, right), Rule{static_cast<int32_t>(i), intern(joined)});
  }
}

int32_t MergeTable::find(std::string_view piece) const {
  const auto it = ids_.find(piece);
  return it == ids_.end() ? -1 : it->second;
}

int32_t MergeTable::intern(std::string_view piece) {
  if (const int32_t id = find(piece); id >= 0) return id;
  const auto id = static_cast<int32_t>(n_vocab_ + extra_.size());
  extra_.emplace_back(piece);
  ids_.emplace(std::string(piece), id);
  return id;
}

std::string_view MergeTable::text(int32_t id) const {
  return id < n_vocab_ ? std::string_view((*tokens_)[static_cast<size_t>(id)])
                       : std::string_view(extra_[static_cast<size_t>(id - n_vocab_)]);
}

namespace {

// A candidate merge of the adjacent symbols `left` and `right` (indices), valid while both still
// hold the piece ids they had when it was queued.
struct Candidate {
  int32_t rank;
  int32_t left, right;
  int32_t left_id, right_id;
  int32_t result;
};

// Priority-queue order: lowest rank first, then the leftmost pair.
struct LaterCandidate {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

}  // namespace

void MergeTable::apply(std::vector<Symbol>& symbols) const {
  const auto n = static_cast<int32_t>(symbols.size());
  if (n < 2) return;
  std::vector<int32_t> next(static_cast<size_t>(n)), prev(static_cast<size_t>(n));  // (n) linked list
  for (int32_t i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  std::priority_queue<Candidate, std::vector<Candidate>, LaterCandidate> queue;
  auto consider = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const int32_t a = symbols[left].id, b = symbols[right].id;
    if (a < 0 || b < 0) return;
    const auto it = rules_.find(key(a, b));
    if (it != rules_.end()) queue.push({it->second.rank, left, right, a, b, it->second.result});
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i, i + 1);

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& l = symbols[c.left];
    Symbol& r = symbols[c.right];
    if (next[c.left] != c.right || l.id != c.left_id || r.id != c.right_id) continue;  // stale
    l.id = c.result;
    l.length += r.length;
    r.id = -1;
    r.length = 0;  // merged away
    next[c.left] = next[c.right];
    if (next[c.right] >= 0) prev[next[c.right]] = c.left;
    consider(prev[c.left], c.left);
    consider(c.left, next[c.left]);
  }
  size_t kept = 0;
  for (int32_t i = 0; i >= 0; i = next[i]) symbols[kept++] = symbols[i];
  symbols.resize(kept);
}

}  // namespace contrail::detail
