#include "tokenizer/pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <fmt/format.h>
#include <pcre2.h>
#include <utf8proc.h>

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "contrail/core/error.h"
#include "contrail/core/utf8.h"

namespace contrail::detail {

namespace {

// One character decoded the way llama.cpp's unicode_cpt_from_utf8 does; length 0 = ill-formed.
struct Decoded {
  uint32_t cp;
  size_t length;
};

Decoded decode_lenient(std::string_view s, size_t at) {
  const auto b0 = static_cast<uint8_t>(s[at]);
  if (b0 < 0x80) return {b0, 1};
  size_t length;
  uint32_t cp;
  if ((b0 & 0x40) == 0) return {0, 0};  // stray continuation byte
  if ((b0 & 0x20) == 0) {
    length = 2, cp = b0 & 0x1Fu;
  } else if ((b0 & 0x10) == 0) {
    length = 3, cp = b0 & 0x0Fu;
  } else if ((b0 & 0x08) == 0) {
    length = 4, cp = b0 & 0x07u;
  } else {
    return {0, 0};  // F8..FF
  }
  if (s.size() - at < length) return {0, 0};
  for (size_t k = 1; k < length; ++k) {
    const auto b = static_cast<uint8_t>(s[at + k]);
    if ((b & 0xC0) != 0x80) return {0, 0};
    cp = (cp << 6) | (b & 0x3Fu);
  }
  if (cp > 0x10FFFF) return {0, 0};
  return {cp, length};
}

// In shortest-form text, a surrogate is ED followed by A0..BF (ED is never a continuation byte).
bool surrogate_at(std::string_view s, size_t i) {
  return static_cast<uint8_t>(s[i]) == 0xED && i + 2 < s.size() && static_cast<uint8_t>(s[i + 1]) >= 0xA0;
}

// NFC of well-formed UTF-8 (no surrogates) via utf8proc.
void append_nfc(std::string& out, std::string_view s) {
  if (s.empty()) return;
  utf8proc_uint8_t* mapped = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()),
                   &mapped, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0)
    throw Error(fmt::format("tokenizer: NFC normalisation of {} bytes failed: {}", s.size(), utf8proc_errmsg(n)));
  out.append(reinterpret_cast<const char*>(mapped), static_cast<size_t>(n));
  std::free(mapped);
}

}  // namespace

PreparedText prepare_text(std::string_view raw, bool nfc) {
  PreparedText p;
  p.text.reserve(raw.size());
  for (size_t i = 0; i < raw.size();) {
    const Decoded d = decode_lenient(raw, i);
    if (d.length == 0) {
      p.text.append("\xEF\xBF\xBD");  // U+FFFD for this one byte, as llama.cpp does
      ++i;
    } else {
      append_utf8(p.text, d.cp);
      i += d.length;
    }
  }
  if (nfc) {
    std::string composed;
    composed.reserve(p.text.size());
    size_t run = 0;
    for (size_t i = 0; i < p.text.size(); ++i) {
      if (!surrogate_at(p.text, i)) continue;
      append_nfc(composed, std::string_view(p.text).substr(run, i - run));
      composed.append(p.text, i, 3);
      run = i + 3;
      i += 2;
    }
    append_nfc(composed, std::string_view(p.text).substr(run));
    p.text.swap(composed);
  }
  p.regex_subject = p.text;
  for (size_t i = 0; i < p.regex_subject.size(); ++i) {
    if (!surrogate_at(p.regex_subject, i)) continue;
    p.regex_subject.replace(i, 3, "\xEE\x80\x80");  // U+E000
    i += 2;
  }
  return p;
}

struct PreTokenizer::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }
};

namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  if (pcre2_get_error_message(code, buf, sizeof(buf)) < 0) return fmt::format("PCRE2 error {}", code);
  return reinterpret_cast<const char*>(buf);
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* md) const { pcre2_match_data_free(md); }
};

}  // namespace

PreTokenizer::PreTokenizer(const std::vector<std::string>& patterns, const std::string& source) : patterns_(patterns) {
  for (size_t i = 0; i < patterns.size(); ++i) {
      const std::string& p = patterns[i];
      int err = 0;
      PCRE2_SIZE err_offset = 0;
      auto c = std::make_unique<Compiled>();
      c->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(),
                              PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &err, &err_offset, nullptr);
      if (!c->code)
        throw FormatError(fmt::format("{}: pre-tokenizer pattern {} '{}' does not compile at offset {}: {}", source, i,
                                      p, err_offset, pcre2_message(err)));
      // JIT is an optimisation only: without it (unsupported platform) the interpreter runs.
      (void)pcre2_jit_compile(c->code, PCRE2_JIT_COMPLETE);
      regexes_.push_back(std::move(c));
  }
}

PreTokenizer::~PreTokenizer() = default;

std::vector<PreTokenizer::Piece> PreTokenizer::split(std::string_view subject) const {
  std::vector<Piece> pieces;
  if (subject.empty()) return pieces;
  pieces.push_back({0, subject.size()});
  if (regexes_.empty()) return pieces;
  const std::unique_ptr<pcre2_match_data, MatchDataDeleter> md(pcre2_match_data_create(1, nullptr));
  if (!md) throw Error("tokenizer: out of memory creating PCRE2 match data");
  std::vector<Piece> next;
  for (size_t r = 0; r < regexes_.size(); ++r) {
    const pcre2_code* code = regexes_[r]->code;
    next.clear();
    for (const Piece& piece : pieces) {
      const auto* base = reinterpret_cast<PCRE2_SPTR>(subject.data() + piece.offset);
      const size_t n = piece.length;
      size_t last = 0;   // end of the previous match
      size_t start = 0;  // where the next search starts
      uint32_t options = 0;
      while (start <= n) {
        const int rc = pcre2_match(code, base, n, start, options | PCRE2_NO_UTF_CHECK, md.get(), nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) {
          if (options == 0) break;
          // No non-empty match where the empty one was: step over one character and search on.
          options = 0;
          ++start;
          while (start < n && (base[start] & 0xC0) == 0x80) ++start;
          continue;
        }
        if (rc < 0)
          throw Error(fmt::format("tokenizer: pre-tokenizer pattern {} '{}' failed on a piece of {} bytes: {}", r,
                                  patterns_[r], n, pcre2_message(rc)));
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
        const size_t begin = ov[0], end = ov[1];
        if (begin > last) next.push_back({piece.offset + last, begin - last});
        if (end > begin) next.push_back({piece.offset + begin, end - begin});
        last = end;
        start = end;
        // After an empty match, first try a non-empty one at the same place (like std::regex_iterator).
        options = end == begin ? PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED : 0;
      }
      if (last < n) next.push_back({piece.offset + last, n - last});
    }
    pieces.swap(next);
  }
  return pieces;
}

}  // namespace contrail::detail
