#include "tokenizer/byte_level.h"

#include <array>

#include "contrail/core/utf8.h"

namespace contrail::detail {

namespace {

bool stands_for_itself(int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE); }

struct Alphabet {
  std::array<std::string, 256> chars;   // (256) byte -> UTF-8 of its character
  std::array<int16_t, 324> byte_of_cp;  // (U+0000..U+0143) code point -> byte, or -1

  Alphabet() {
    byte_of_cp.fill(-1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const int cp = stands_for_itself(b) ? b : next++;
      byte_of_cp[static_cast<size_t>(cp)] = static_cast<int16_t>(b);
      // Every code point here is below U+0800: one or two UTF-8 bytes.
      std::string& s = chars[static_cast<size_t>(b)];
      if (cp < 0x80) {
        s.push_back(static_cast<char>(cp));
      } else {
        s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet a;
  return a;
}

}  // namespace

std::string_view byte_level_char(uint8_t b) { return alphabet().chars[b]; }

void append_byte_level(std::string& out, std::string_view bytes) {
  const Alphabet& a = alphabet();
  for (const char c : bytes) out += a.chars[static_cast<uint8_t>(c)];
}

std::string byte_level_decode(std::string_view text) {
  const Alphabet& a = alphabet();
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const utf8::Step st = utf8::next(text);
    const size_t n = st.length;
    int cp = -1;
    if (st.kind == utf8::Step::Valid && n <= 2) {
      const auto b0 = static_cast<uint8_t>(text[0]);
      cp = n == 1 ? b0 : ((b0 & 0x1F) << 6) | (static_cast<uint8_t>(text[1]) & 0x3F);
    }
    if (cp >= 0 && cp < static_cast<int>(a.byte_of_cp.size()) && a.byte_of_cp[static_cast<size_t>(cp)] >= 0)
      out.push_back(static_cast<char>(a.byte_of_cp[static_cast<size_t>(cp)]));
    else
      out.append(text.substr(0, n));
    text.remove_prefix(n);
  }
  return out;
}

}  // namespace contrail::detail
