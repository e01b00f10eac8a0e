// UTF-8 encoding, decoding steps and validation, shared by the tokenizer, the streaming decoder,
// the chat-template lexer, the CLI and tests.
//
// Well-formedness follows the Unicode Standard, Table 3-7 (no overlong forms, no surrogates
// U+D800..U+DFFF, nothing above U+10FFFF). Ill-formed input is replaced following the Unicode
// "maximal subpart" practice: each maximal prefix of a would-be sequence that cannot be completed
// becomes one U+FFFD (so "\xE2\x82" + "A" gives U+FFFD "A", and "\xFF" gives one U+FFFD).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace contrail {

// Appends the UTF-8 bytes of `cp` (cp <= 0x10FFFF; surrogates are encoded as they are, like
// llama.cpp's unicode_cpt_to_utf8 and Python's "surrogatepass").
inline void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

namespace utf8 {

// U+FFFD REPLACEMENT CHARACTER, encoded.
inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// Length a UTF-8 sequence claims from its first byte alone, the way SentencePiece and llama.cpp split
// text into "characters": 0xxxxxxx and stray continuation bytes 10xxxxxx -> 1, 110xxxxx -> 2,
// 1110xxxx -> 3, 1111xxxx -> 4. Never 0; does not validate the following bytes.
size_t lead_length(uint8_t first_byte);

// What the bytes at the start of `s` hold.
struct Step {
  enum Kind {
    Valid,       // one well-formed character of `length` bytes
    Invalid,     // an ill-formed maximal subpart of `length` (>= 1) bytes: replace it by one U+FFFD
    Incomplete,  // `s` ends inside a sequence that is well-formed so far (`length` == s.size())
  } kind;
  size_t length;
};
// Precondition: !s.empty().
Step next(std::string_view s);

// True if `s` is entirely well-formed UTF-8.
bool is_valid(std::string_view s);

// Appends `s` to `out` with every ill-formed maximal subpart (including an incomplete sequence
// at the very end) replaced by U+FFFD. The result is always valid UTF-8.
void append_sanitized(std::string& out, std::string_view s);

}  // namespace utf8
}  // namespace contrail
