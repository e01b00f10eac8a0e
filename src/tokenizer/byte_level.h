// Internal: GPT-2's byte-level alphabet. Byte-level BPE vocabularies spell every byte as one
// printable character: '!'..'~', U+00A1..U+00AC and U+00AE..U+00FF stand for themselves, the other
// 68 bytes (controls, space, DEL, NBSP, soft hyphen...) for U+0100.. in increasing byte order
// (so ' ' is U+0120 'Ġ' and '\n' is U+010A 'Ċ').
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace contrail::detail {

// UTF-8 of the character that stands for byte `b`.
std::string_view byte_level_char(uint8_t b);

// Appends the byte-level spelling of `bytes`.
void append_byte_level(std::string& out, std::string_view bytes);

// Inverse of append_byte_level for a token's text. A character outside the alphabet (possible in
// hand-made vocabularies) is kept as its own UTF-8 bytes.
std::string byte_level_decode(std::string_view text);

}  // namespace contrail::detail
