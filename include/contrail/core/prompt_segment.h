// A rendered prompt as a sequence of pieces that remember where their text came from.
//
// The chat template renderer produces them (ChatTemplate::apply_segments) and the tokenizer
// consumes them (Tokenizer::encode_segments): control-token text ("</s>", "<|im_end|>", ...)
// becomes a control token only inside trusted pieces, i.e. text the template itself wrote
// (its literals, and template configuration such as bos_token). Untrusted pieces (message
// contents, roles, tool definitions: anything from the caller's conversation) are always plain
// text, so a user cannot forge turns or end-of-sequence tokens by typing their spelling.
// The type lives in core because chat and tokenizer are sibling layers.
#pragma once
#include <algorithm>
#include <span>
#include <string>
#include <string_view>

namespace contrail {

struct PromptSegment {
  std::string text;
  bool untrusted = false;  // true: the caller's data; control-token text in it is plain text
};

// The prompt text: every segment's text, in order.
inline std::string join_segments(std::span<const PromptSegment> segments) {
  std::string out;
  for (const PromptSegment& s : segments) out += s.text;
  return out;
}

// Whether the prompt begins with `prefix` written by the template itself (all of it inside
// trusted segments): e.g. whether the template emitted bos_token, so the tokenizer must not add
// BOS again. An empty prefix never matches.
inline bool starts_with_trusted(std::span<const PromptSegment> segments, std::string_view prefix) {
  if (prefix.empty()) return false;
  size_t matched = 0;
  for (const PromptSegment& s : segments) {
    if (s.text.empty()) continue;
    if (s.untrusted) return false;
    const size_t n = std::min(s.text.size(), prefix.size() - matched);
    if (s.text.compare(0, n, prefix.substr(matched, n)) != 0) return false;
    matched += n;
    if (matched == prefix.size()) return true;
  }
  return false;
}

}  // namespace contrail
