// Llama 3's tiktoken-format tokenizer.model -> byte-level BPE VocabData, equal to what HF's
// tokenizer.json for the same model holds: tokens spelled with GPT-2's byte-to-unicode map, merges
// rebuilt from the ranks the way HF's converter does (every split of a token into two tokens, in
// token-rank order), Meta's pattern and special tokens.
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "contrail/core/error.h"
#include "contrail/core/mapped_file.h"
#include "contrail/tokenizer/hf_tokenizer.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/hf_detail.h"

namespace contrail {

namespace detail {

namespace {

// Meta's Llama 3 pre-tokenizer pattern (tokenizer.py pat_str; HF's Split regex is identical).
constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr int kNumSpecial = 256;  // Meta: num_reserved_special_tokens

// Meta's special tokens, ids n_ranks + i.
std::string special_token(int i) {
  static const char* const kNamed[] = {"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                                       "<|reserved_special_token_1|>", "<|reserved_special_token_2|>",
                                       "<|reserved_special_token_3|>", "<|start_header_id|>", "<|end_header_id|>",
                                       "<|reserved_special_token_4|>", "<|eot_id|>"};
  if (i < 10) return kNamed[i];
  return fmt::format("<|reserved_special_token_{}|>", i - 5);
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Strict base64 (length a multiple of 4, '=' only as final padding); false if malformed.
bool decode_base64(std::string_view in, std::string& out) {
  out.clear();
  if (in.empty() || in.size() % 4 != 0) return false;
  for (size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    const size_t pad = last ? (in[i + 3] == '=') + (in[i + 2] == '=' && in[i + 3] == '=') : 0;
    uint32_t acc = 0;
    for (size_t k = 0; k < 4; ++k) {
      const int v = k >= 4 - pad ? 0 : base64_value(in[i + k]);
      if (v < 0) return false;
      acc = acc << 6 | static_cast<uint32_t>(v);
    }
    out.push_back(static_cast<char>(acc >> 16));
    if (pad < 2) out.push_back(static_cast<char>(acc >> 8 & 0xFF));
    if (pad < 1) out.push_back(static_cast<char>(acc & 0xFF));
  }
  return true;
}

// The merges of one token, as HF's TikTokenConverter (transformers convert_slow_tokenizer.py,
// extract_vocab_merges_from_model) writes them: every split of the token's bytes into two
// tokens, ordered by (rank of the left part, rank of the right part). Listed in token-rank order,
// these merges make rank-ordered BPE equal to tiktoken's, which merges the adjacent pair whose
// concatenation has the lowest rank; a token reachable by several splits ('.:.:' = '.:' + '.:'
// or '.' + ':.:' ...) needs all of them.
void append_merges(const std::unordered_map<std::string, int32_t>& ranks, const std::string& token,
                   std::vector<std::pair<int32_t, int32_t>>& out) {
  const size_t first = out.size();
  for (size_t i = 1; i < token.size(); ++i) {
    const auto l = ranks.find(token.substr(0, i));
    if (l == ranks.end()) continue;
    const auto r = ranks.find(token.substr(i));
    if (r == ranks.end()) continue;
    out.emplace_back(l->second, r->second);
  }
  std::sort(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
}

}  // namespace

VocabData parse_tiktoken_model(std::string_view text, const std::string& src) {
  std::vector<std::string> raw;  // (n_ranks) token bytes by rank
  std::unordered_map<std::string, int32_t> ranks;
  std::string bytes;
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.empty()) continue;
    const size_t sp = line.find(' ');
    const std::string_view b64 = line.substr(0, sp);
    const std::string_view rank_text = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
    if (!decode_base64(b64, bytes))
      throw FormatError(fmt::format("{}: line {}: '{}' is not base64 token text", src, line_no, b64.substr(0, 60)));
    if (rank_text != std::to_string(raw.size()))
      throw FormatError(fmt::format("{}: line {}: rank '{}' should be {} (ranks must be 0, 1, 2, ...)", src, line_no,
                                    rank_text.substr(0, 20), raw.size()));
    if (raw.size() >= kMaxHfVocab) throw FormatError(fmt::format("{}: more than {} tokens", src, kMaxHfVocab));
    if (!ranks.emplace(bytes, static_cast<int32_t>(raw.size())).second)
      throw FormatError(fmt::format("{}: line {}: token '{}' is listed twice", src, line_no, b64.substr(0, 60)));
    raw.push_back(bytes);
  }
  if (raw.empty()) throw FormatError(fmt::format("{}: no tokens", src));

  const auto spelled = [](const std::string& b) {
    std::string s;
    append_byte_level(s, b);
    return s;
  };
  VocabData v;
  v.kind = VocabKind::BytePair;
  v.model = "gpt2";
  v.pre = "llama-bpe";
  v.pre_patterns = {kLlama3Pattern};
  v.ignore_merges = true;
  v.byte_fallback = false;
  v.add_space_prefix = false;
  const size_t n = raw.size();
  v.tokens.reserve(n + kNumSpecial);
  std::vector<std::pair<int32_t, int32_t>> merges;  // (left rank, right rank), best first
  for (size_t r = 0; r < n; ++r) {
    v.tokens.push_back(spelled(raw[r]));
    if (raw[r].size() >= 2) append_merges(ranks, raw[r], merges);
  }
  v.merges.reserve(merges.size());
  for (const auto& [l, r] : merges)
    v.merges.push_back(v.tokens[static_cast<size_t>(l)] + " " + v.tokens[static_cast<size_t>(r)]);
  v.types.assign(n, TokenType::Normal);
  for (int i = 0; i < kNumSpecial; ++i) {
    v.tokens.push_back(special_token(i));
    v.types.push_back(TokenType::Control);
  }
  v.bos_id = static_cast<int32_t>(n);      // <|begin_of_text|>
  v.eos_id = static_cast<int32_t>(n) + 1;  // <|end_of_text|>
  v.eot_id = static_cast<int32_t>(n) + 9;  // <|eot_id|>
  v.add_bos = true;
  v.add_eos = false;
  v.validate(src);
  return v;
}

}  // namespace detail

VocabData load_tiktoken_model(const std::string& path) {
  const auto file = MappedFile::open(path);
  return detail::parse_tiktoken_model(std::string_view(reinterpret_cast<const char*>(file->data()), file->size()), path);
}

}  // namespace contrail
