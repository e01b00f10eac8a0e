#include "contrail/tokenizer/tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <memory>
#include <string_view>
#include <unordered_set>

#include "contrail/core/error.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/spm_tokenizer.h"

namespace contrail {

namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

// Token texts llama.cpp treats as end of generation (and therefore as control tokens, whatever
// type the file gives them): EOT/EOM markers of the common chat formats and the FIM pad / repo /
// file-separator tokens.
constexpr std::string_view kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
    "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
    "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",  // DeepSeek's end of sentence
    "[e~[", "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", "<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
    "<REPO>", "<reponame>", "<|file_sep|>"};

// Fill-in-the-middle prefix/suffix/middle markers: llama.cpp types them as control, but they do
// not end generation.
constexpr std::string_view kFimTexts[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>", "<PRE>",
    "\xE2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>",
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "hole\xEF\xBD\x9C>", "<SUF>",
    "\xE2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>",
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>", "<MID>",
    "\xE2\x96\x81<MID>", "<|code_middle|>", "<|middle|>"};

template <size_t N>
bool contains(std::string_view text, const std::string_view (&list)[N]) {
  return std::find(std::begin(list), std::end(list), text) != std::end(list);
}

VocabData validated(VocabData v) {
  v.validate("tokenizer vocabulary");
  return v;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos);
    out.append(to);
  }
  out.append(s, pos);
  s.swap(out);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;  // validate() checked isxdigit
}

// A piece of the input during special-token splitting: either raw text [offset, offset+length)
// of the input or one special token.
struct Fragment {
  int32_t token;  // -1 for raw text
  size_t offset;
  size_t length;
};

// Whether [b, e) overlaps one of the sorted, disjoint byte ranges.
bool overlaps(std::span<const std::pair<size_t, size_t>> ranges, size_t b, size_t e) {
  const auto it = std::lower_bound(ranges.begin(), ranges.end(), b, [](const auto& r, size_t pos) { return r.second <= pos; });
  return it != ranges.end() && it->first < e;
}

// isspace() in the C locale, as llama.cpp's lstrip/rstrip use it.
bool is_c_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// HF's clean_up_tokenization_spaces as llama.cpp's detokenizer applies it, in its three passes:
// " ?", " !", " .", " ," lose the space; a lone apostrophe between spaces loses both spaces; " 's",
// " 'm", " 're", " 've" lose the space (" 't", " 'd", " 'll" keep it).
std::string clean_up_spaces(std::string_view s) {
  if (s.empty()) return {};
  std::string a(1, s[0]);
  for (size_t i = 1; i < s.size(); ++i) {
    const char x = s[i];
    if (s[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) a.pop_back();
    a.push_back(x);
  }
  std::string b(1, a[0]);
  char prev = a[0];
  for (size_t i = 1; i < a.size(); ++i) {
    const char x = a[i];
    if (x == '\'' && i + 1 < a.size() && prev == ' ' && a[i + 1] == ' ') {
      b.pop_back();
      b.push_back(x);
      ++i;          // the space after it goes too
      prev = '\0';  // and does not count as a space before the next character
      continue;
    }
    b.push_back(x);
    prev = x;
  }
  std::string c(1, b[0]);
  for (size_t i = 1; i < b.size(); ++i) {
    const char x = b[i];
    if (b[i - 1] == ' ' && x == '\'' && i + 1 < b.size()) {
      const char x1 = b[i + 1];
      const char x2 = i + 2 < b.size() ? b[i + 2] : '\0';
      if (x1 == 's' || x1 == 'm' || (x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) c.pop_back();
    }
    c.push_back(x);
  }
  return c;
}

}  // namespace

struct Tokenizer::Impl {
  VocabData vocab;
  detail::PieceIndex index;
  // Merge-rank tokenizer: BytePair vocabularies and SentencePiece ones with merges; else null.
  std::unique_ptr<detail::BpeEncoder> bpe;
  // Per token (n_vocab): text as rendered with render_special (U+2581 unescaped or the byte-level
  // alphabet decoded, byte tokens as their byte, Unused/Undefined tokens empty), and whether it is
  // a control token (Control or Unknown type, or a text llama.cpp forces to control) that renders
  // as "" by default.
  std::vector<std::string> rendered;  // (n_vocab)
  std::vector<bool> control;          // (n_vocab)
  std::vector<bool> lstrip, rstrip;   // (n_vocab) absorb whitespace before / after the token's text
  std::unordered_set<int32_t> eog;
  // Tokens matched verbatim in the input before the merge tokenizer runs (control, unknown and
  // user-defined types), longest text first, ties by id. Control ones only when parse_special.
  std::vector<int32_t> specials;

  explicit Impl(VocabData v) : vocab(validated(std::move(v))), index(vocab) {
    if (vocab.kind == VocabKind::BytePair || !vocab.merges.empty())
      bpe = std::make_unique<detail::BpeEncoder>(vocab, index, "tokenizer vocabulary");
    const size_t n = vocab.tokens.size();
    rendered.resize(n);
    control.resize(n);
    lstrip.resize(n);
    rstrip.resize(n);
    for (const int32_t id : vocab.lstrip_ids) lstrip[static_cast<size_t>(id)] = true;
    for (const int32_t id : vocab.rstrip_ids) rstrip[static_cast<size_t>(id)] = true;
    for (size_t i = 0; i < n; ++i) {
      const std::string& text = vocab.tokens[i];
      const TokenType type = vocab.types[i];
      const bool is_eog_text = contains(text, kEogTexts);
      control[i] = type == TokenType::Control || type == TokenType::Unknown || is_eog_text || contains(text, kFimTexts);
      if (is_eog_text) eog.insert(static_cast<int32_t>(i));
      if (control[i] || type == TokenType::UserDefined) {
        rendered[i] = text;
        // A user-defined SentencePiece token spelled with U+2581 (HF tokenizer.json keeps Gemma's
        // "\u2581\u2581" whitespace runs verbatim) stands for spaces, as HF's Replace decoder
        // renders it; llama.cpp's converter already stores such tokens with spaces.
        if (!control[i] && vocab.kind == VocabKind::SentencePiece) replace_all(rendered[i], kSpaceMarker, " ");
        if (!text.empty()) specials.push_back(static_cast<int32_t>(i));
      } else if (type == TokenType::Normal) {
        if (vocab.kind == VocabKind::BytePair) {
          rendered[i] = detail::byte_level_decode(text);
        } else {
          rendered[i] = text;
          replace_all(rendered[i], kSpaceMarker, " ");
        }
      } else if (type == TokenType::Byte) {
        rendered[i] = std::string(1, static_cast<char>(hex_value(text[3]) * 16 + hex_value(text[4])));
      }
    }
    if (vocab.eos_id >= 0) eog.insert(vocab.eos_id);
    if (vocab.eot_id >= 0) eog.insert(vocab.eot_id);
    std::stable_sort(specials.begin(), specials.end(), [&](int32_t a, int32_t b) {
      return vocab.tokens[a].size() > vocab.tokens[b].size();
    });
  }

  void check_id(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= vocab.tokens.size())
      throw InvalidArgument(fmt::format("tokenizer: token id {} is out of range [0, {})", id, vocab.tokens.size()));
  }

  // Splits `text` at every occurrence of a special token's text, like llama.cpp's
  // tokenizer_st_partition: tokens are tried longest first, each over all remaining raw pieces.
  // An lstrip token drops the whitespace before it from the raw piece on its left, an rstrip
  // token the whitespace after it (C-locale isspace, as llama.cpp's LSTRIP/RSTRIP attributes).
  // A control token's text overlapping a byte range of `plain` (sorted, disjoint) stays raw text.
  std::vector<Fragment> partition(std::string_view text, bool parse_special,
                                  std::span<const std::pair<size_t, size_t>> plain) const {
    std::vector<Fragment> frags;
    if (text.empty()) return frags;
    frags.push_back({-1, 0, text.size()});
    std::vector<Fragment> next;
    for (const int32_t id : specials) {
      if (!parse_special && control[id]) continue;
      const std::string& piece = vocab.tokens[id];
      next.clear();
      for (const Fragment& f : frags) {
        if (f.token >= 0) {
          next.push_back(f);
          continue;
        }
        const size_t end = f.offset + f.length;
        size_t pos = f.offset;
        for (size_t hit, from = pos; (hit = text.substr(0, end).find(piece, from)) != std::string_view::npos;) {
          if (control[id] && overlaps(plain, hit, hit + piece.size())) {
            from = hit + 1;
            continue;
          }
          size_t left_end = hit;
          if (lstrip[id])
            while (left_end > pos && is_c_space(text[left_end - 1])) --left_end;
          if (left_end > pos) next.push_back({-1, pos, left_end - pos});
          next.push_back({id, 0, 0});
          pos = hit + piece.size();
          if (rstrip[id])
            while (pos < end && is_c_space(text[pos])) ++pos;
          from = pos;
        }
        if (pos < end) next.push_back({-1, pos, end - pos});
      }
      frags.swap(next);
    }
    return frags;
  }
};

Tokenizer::Tokenizer(VocabData vocab) : impl_(new Impl(std::move(vocab))) {}
Tokenizer::~Tokenizer() { delete impl_; }
Tokenizer::Tokenizer(Tokenizer&& o) noexcept : impl_(o.impl_) { o.impl_ = nullptr; }
Tokenizer& Tokenizer::operator=(Tokenizer&& o) noexcept {
  if (this != &o) {
    delete impl_;
    impl_ = o.impl_;
    o.impl_ = nullptr;
  }
  return *this;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  return encode_impl(text, add_special, parse_special, {});
}

std::vector<int32_t> Tokenizer::encode_segments(std::span<const PromptSegment> segments, bool add_special) const {
  std::string text;
  std::vector<std::pair<size_t, size_t>> plain;  // byte ranges of the untrusted segments in text
  for (const PromptSegment& s : segments) {
    if (s.untrusted && !s.text.empty()) plain.emplace_back(text.size(), text.size() + s.text.size());
    text += s.text;
  }
  return encode_impl(text, add_special, /*parse_special=*/true, plain);
}

std::vector<int32_t> Tokenizer::encode_impl(std::string_view text, bool add_special, bool parse_special,
                                            std::span<const std::pair<size_t, size_t>> plain) const {
  const VocabData& v = impl_->vocab;
  const detail::BpeEncoder* bpe = impl_->bpe.get();
  std::vector<int32_t> out;
  if (add_special && v.add_bos) out.push_back(v.bos_id);
  // SentencePiece adds its dummy-prefix space at the start of every raw-text run that follows
  // the start of the input or a special token.
  bool prev_special = true;
  std::string piece_text;
  for (const Fragment& f : impl_->partition(text, parse_special, plain)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      prev_special = true;
      continue;
    }
    const std::string_view raw = text.substr(f.offset, f.length);
    const bool after_special = prev_special;
    prev_special = false;
    if (v.kind == VocabKind::BytePair) {
      bpe->encode_byte_level(raw, out);
      continue;
    }
    piece_text.clear();
    if (v.add_space_prefix && after_special) piece_text.push_back(' ');
    piece_text.append(raw);
    replace_all(piece_text, " ", kSpaceMarker);
    if (bpe)
      bpe->encode_spm(piece_text, out);
    else
      detail::spm_encode(v, impl_->index, piece_text, out);
  }
  if (add_special && v.add_eos) out.push_back(v.eos_id);
  return out;
}

std::string Tokenizer::token_to_bytes(int32_t id, bool render_special) const {
  impl_->check_id(id);
  if (impl_->control[id] && !render_special) return {};
  return impl_->rendered[id];
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
  std::string out;
  for (const int32_t id : ids) out += token_to_bytes(id, render_special);
  return impl_->vocab.clean_up_spaces ? clean_up_spaces(out) : out;
}

const VocabData& Tokenizer::vocab() const { return impl_->vocab; }
int64_t Tokenizer::n_vocab() const { return static_cast<int64_t>(impl_->vocab.tokens.size()); }
int32_t Tokenizer::bos_id() const { return impl_->vocab.bos_id; }
int32_t Tokenizer::eos_id() const { return impl_->vocab.eos_id; }
bool Tokenizer::is_eog(int32_t id) const { return impl_->eog.count(id) != 0; }

}  // namespace contrail
