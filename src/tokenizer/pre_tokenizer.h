// Internal: text preparation for the byte-level BPE tokenizer: llama.cpp-compatible handling of
// ill-formed UTF-8, optional NFC normalisation, and the regex pre-tokenizer (PCRE2, compiled once).
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace contrail::detail {

// Text as llama.cpp's unicode_cpts_from_utf8 + unicode_cpt_to_utf8 see it, in two byte-for-byte
// aligned forms:
//  - `text`: what gets tokenized. Each character is decoded the lenient llama.cpp way (the lead
//    byte gives the length, continuation bytes must be 10xxxxxx; overlong forms and surrogates are
//    accepted) and re-encoded in shortest form; every byte that does not start such a character
//    becomes U+FFFD. Code points above U+10FFFF (leads F5..F7), on which llama.cpp throws, are
//    treated as ill-formed here, one U+FFFD per byte.
//  - `regex_subject`: `text` with each surrogate (3 bytes ED A0..BF xx) replaced by the
//    private-use U+E000 (also 3 bytes, also neither letter, number, mark, punctuation nor space),
//    so that it is well-formed UTF-8 for PCRE2 and offsets into both strings agree.
struct PreparedText {
  std::string text;
  std::string regex_subject;
};
// `nfc`: compose to Unicode NFC (utf8proc) after the decoding above; surrogates stay as they are
// and NFC is applied to the runs between them.
PreparedText prepare_text(std::string_view raw, bool nfc);

// The pre-tokenizer: regexes compiled once (PCRE2_UTF | PCRE2_UCP, '$' matches only at the very
// end, JIT when available). Thread-safe for concurrent const use.
class PreTokenizer {
 public:
  // Throws FormatError naming `source`, the pattern and PCRE2's message if a pattern does not compile.
  PreTokenizer(const std::vector<std::string>& patterns, const std::string& source);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  struct Piece {
    size_t offset, length;  // bytes of the subject
  };
  // Splits well-formed UTF-8 `subject` (PreparedText::regex_subject): each pattern splits every
  // piece left by the previous one into its matches and the text between them, all kept, in order
  // (HF Split(behavior=Isolated), llama.cpp unicode_regex_split). A pattern sees one piece as the
  // whole subject (lookaheads stop at its end). Empty matches keep no piece but split the text
  // around them. No patterns: the subject is one piece. Empty pieces are never returned.
  // Throws Error if PCRE2 gives up on a piece (match or JIT stack limit).
  std::vector<Piece> split(std::string_view subject) const;

 private:
  struct Compiled;
  std::vector<std::unique_ptr<Compiled>> regexes_;  // (n_patterns)
  std::vector<std::string> patterns_;
};

}  // namespace contrail::detail
