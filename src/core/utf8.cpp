#include "contrail/core/utf8.h"

namespace contrail::utf8 {

size_t lead_length(uint8_t first_byte) {
  // Indexed by the high nibble: 0x0-0xB -> 1 (ASCII and stray continuation bytes), 0xC-0xD -> 2,
  // 0xE -> 3, 0xF -> 4.
  static constexpr uint8_t kLength[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLength[first_byte >> 4];
}

namespace {

// Accepted range of the second byte of a sequence led by `lead` (Unicode Table 3-7); the third and
// fourth bytes are always 0x80..0xBF.
struct ByteRange {
  uint8_t lo, hi;
};
constexpr ByteRange second_byte_range(uint8_t lead) {
  switch (lead) {
    case 0xE0: return {0xA0, 0xBF};  // excludes overlong 3-byte forms
    case 0xED: return {0x80, 0x9F};  // excludes surrogates
    case 0xF0: return {0x90, 0xBF};  // excludes overlong 4-byte forms
    case 0xF4: return {0x80, 0x8F};  // nothing above U+10FFFF
    default: return {0x80, 0xBF};
  }
}

// Expected total length for a lead byte, or 0 if the byte can never start a sequence
// (continuation bytes 0x80..0xBF, overlong leads 0xC0/0xC1, and 0xF5..0xFF).
constexpr size_t sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xC2) return 0;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF5) return 4;
  return 0;
}

}  // namespace

Step next(std::string_view s) {
  const auto lead = static_cast<uint8_t>(s[0]);
  const size_t need = sequence_length(lead);
  if (need == 0) return {Step::Invalid, 1};
  for (size_t i = 1; i < need; ++i) {
    if (i >= s.size()) return {Step::Incomplete, s.size()};
    const auto b = static_cast<uint8_t>(s[i]);
    const ByteRange r = i == 1 ? second_byte_range(lead) : ByteRange{0x80, 0xBF};
    if (b < r.lo || b > r.hi) return {Step::Invalid, i};
  }
  return {Step::Valid, need};
}

bool is_valid(std::string_view s) {
  while (!s.empty()) {
    const Step st = next(s);
    if (st.kind != Step::Valid) return false;
    s.remove_prefix(st.length);
  }
  return true;
}

void append_sanitized(std::string& out, std::string_view s) {
  while (!s.empty()) {
    const Step st = next(s);
    if (st.kind == Step::Valid)
      out.append(s.substr(0, st.length));
    else
      out.append(kReplacement);
    s.remove_prefix(st.length);
  }
}

}  // namespace contrail::utf8
