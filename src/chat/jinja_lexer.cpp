// Jinja2 lexer: template text and tags, with Jinja2's whitespace control ({%- -%}, {%+ +%},
// trim_blocks, lstrip_blocks) applied to the text tokens exactly as jinja2.lexer does.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "chat/jinja_ast.h"
#include "contrail/core/error.h"
#include "contrail/core/utf8.h"

namespace contrail::jinja {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ident(char c) { return is_ident_start(c) || is_digit(c); }

class Lexer {
 public:
  Lexer(const std::string& src, const LexOptions& opts) : src_(src), opts_(opts) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src.size(); ++i)
      if (src[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    size_t pos = 0;
    bool line_starting = true;  // the previous match ended with a newline (jinja2's line_starting)
    while (pos < src_.size()) {
      const size_t tag = find_tag(pos);
      std::string text = src_.substr(pos, tag - pos);
      if (tag == src_.size()) {
        emit_text(std::move(text), pos);
        break;
      }
      const char kind = src_[tag + 1];  // '{', '%' or '#'
      const char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+') ? src_[tag + 2] : 0;
      if (sign == '-') {
        text.erase(std::find_if_not(text.rbegin(), text.rend(), is_space).base(), text.end());
      } else if (sign != '+' && kind != '{' && opts_.lstrip_blocks) {
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if ((l_pos > 0 || line_starting) && l_pos < text.size() &&
            std::all_of(text.begin() + static_cast<ptrdiff_t>(l_pos), text.end(), is_space))
          text.resize(l_pos);
      }
      emit_text(std::move(text), pos);
      // A '+' on a variable tag is an operator, not whitespace control.
      pos = tag + 2 + (sign && !(kind == '{' && sign == '+') ? 1 : 0);
      if (kind == '#') {
        pos = lex_comment_end(tag, pos);
      } else {
        push(kind == '{' ? Tok::VarBegin : Tok::BlockBegin, "", tag);
        pos = lex_tag(kind, pos);
      }
      line_starting = pos > 0 && src_[pos - 1] == '\n';
    }
    push(Tok::Eof, "", src_.size());
    return std::move(tokens_);
  }

 private:
  Pos pos_of(size_t off) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), off) - 1;
    return Pos{static_cast<int>(it - line_starts_.begin()) + 1, static_cast<int>(off - *it) + 1};
  }

  [[noreturn]] void fail(size_t off, const std::string& what) const {
    const Pos p = pos_of(off);
    throw FormatError(fmt::format("chat template line {}:{}: {}", p.line, p.col, what));
  }

  size_t find_tag(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i)
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    return src_.size();
  }

  void push(Tok t, std::string text, size_t off) {
    Token tok;
    tok.type = t;
    tok.text = std::move(text);
    tok.pos = pos_of(off);
    tokens_.push_back(std::move(tok));
  }

  void emit_text(std::string text, size_t off) {
    if (!text.empty()) push(Tok::Text, std::move(text), off);
  }

  // After a block or comment end: '-' strips all following whitespace, otherwise trim_blocks
  // removes one newline unless the end was marked '+'.
  size_t after_end(size_t pos, char sign, bool block_like) const {
    if (sign == '-') {
      while (pos < src_.size() && is_space(src_[pos])) ++pos;
    } else if (block_like && sign != '+' && opts_.trim_blocks && pos < src_.size() && src_[pos] == '\n') {
      ++pos;
    }
    return pos;
  }

  size_t lex_comment_end(size_t tag, size_t pos) {
    const size_t end = src_.find("#}", pos);
    if (end == std::string::npos) fail(tag, "unterminated comment '{#'");
    const char sign = end > pos && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : 0;
    return after_end(end + 2, sign, true);
  }

  // Tokens of one {{ }} or {% %} tag; returns the position after its end.
  size_t lex_tag(char kind, size_t pos) {
    const char close = kind == '{' ? '}' : '%';
    int depth = 0;  // open brackets: an end marker inside them is not the end of the tag
    for (;;) {
      while (pos < src_.size() && is_space(src_[pos])) ++pos;
      if (pos >= src_.size()) fail(pos, fmt::format("unexpected end of template inside '{}{}'", '{', kind));
      if (depth == 0) {
        for (const char sign : {'-', '+', '\0'}) {
          if (sign == '+' && kind == '{') continue;
          const size_t at = pos + (sign ? 1 : 0);
          if ((!sign || src_[pos] == sign) && at + 1 < src_.size() && src_[at] == close && src_[at + 1] == '}') {
            push(kind == '{' ? Tok::VarEnd : Tok::BlockEnd, "", pos);
            return after_end(at + 2, sign, kind == '%');
          }
        }
      }
      pos = lex_token(pos, depth);
    }
  }

  size_t lex_token(size_t pos, int& depth) {
    const char c = src_[pos];
    if (is_ident_start(c)) {
      size_t e = pos;
      while (e < src_.size() && is_ident(src_[e])) ++e;
      push(Tok::Name, src_.substr(pos, e - pos), pos);
      return e;
    }
    if (is_digit(c)) return lex_number(pos);
    if (c == '\'' || c == '"') return lex_string(pos);
    static const char* const kOps2[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : kOps2)
      if (src_.compare(pos, 2, op) == 0) {
        push(Tok::Op, op, pos);
        return pos + 2;
      }
    if (std::strchr("+-*/%~<>=()[]{},.:|", c) && c != '\0') {
      if (c == '(' || c == '[' || c == '{') ++depth;
      if ((c == ')' || c == ']' || c == '}') && depth > 0) --depth;
      push(Tok::Op, std::string(1, c), pos);
      return pos + 1;
    }
    fail(pos, fmt::format("unexpected character '{}'", c));
  }

  size_t lex_digits(size_t pos, std::string& out) const {
    while (pos < src_.size() && (is_digit(src_[pos]) || (src_[pos] == '_' && pos + 1 < src_.size() && is_digit(src_[pos + 1])))) {
      if (src_[pos] != '_') out += src_[pos];
      ++pos;
    }
    return pos;
  }

  size_t lex_number(size_t start) {
    std::string digits;
    size_t pos = lex_digits(start, digits);
    // After '.', digits are an attribute index (x.0), never a float.
    const bool after_dot = !tokens_.empty() && tokens_.back().type == Tok::Op && tokens_.back().text == ".";
    bool is_float = false;
    if (!after_dot && pos + 1 < src_.size() && src_[pos] == '.' && is_digit(src_[pos + 1])) {
      digits += '.';
      pos = lex_digits(pos + 1, digits);
      is_float = true;
    }
    if (!after_dot && pos < src_.size() && (src_[pos] == 'e' || src_[pos] == 'E')) {
      size_t e = pos + 1;
      std::string exp = "e";
      if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) exp += src_[e++];
      if (e < src_.size() && is_digit(src_[e])) {
        pos = lex_digits(e, exp);
        digits += exp;
        is_float = true;
      }
    }
    Token tok;
    tok.pos = pos_of(start);
    tok.text = digits;
    if (is_float) {
      tok.type = Tok::Float;
      tok.fval = std::strtod(digits.c_str(), nullptr);
    } else {
      tok.type = Tok::Int;
      errno = 0;
      char* end = nullptr;
      const long long v = std::strtoll(digits.c_str(), &end, 10);
      if (errno == ERANGE) fail(start, fmt::format("integer literal {} exceeds the 64-bit range", digits));
      tok.ival = v;
    }
    tokens_.push_back(std::move(tok));
    return pos;
  }

  // Python "unicode-escape" decoding, as Jinja2 applies to string literals; an unknown escape
  // keeps its backslash.
  size_t lex_string(size_t start) {
    const char q = src_[start];
    std::string out;
    size_t pos = start + 1;
    for (;;) {
      if (pos >= src_.size()) fail(start, "unterminated string literal");
      const char c = src_[pos];
      if (c == q) break;
      if (c != '\\') {
        out += c;
        ++pos;
        continue;
      }
      if (pos + 1 >= src_.size()) fail(start, "unterminated string literal");
      const char e = src_[pos + 1];
      pos += 2;
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case '\n': break;  // line continuation
        case 'x':
        case 'u':
        case 'U': {
          const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          for (size_t i = 0; i < n; ++i) {
            const char h = pos + i < src_.size() ? src_[pos + i] : '\0';
            const int d = is_digit(h) ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
            if (d < 0) fail(pos - 2, fmt::format("truncated \\{} escape in string literal", e));
            cp = cp * 16 + static_cast<uint32_t>(d);
          }
          if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            fail(pos - 2, fmt::format("escape \\{} names no Unicode scalar value (U+{:X})", e, cp));
          append_utf8(out, cp);
          pos += n;
          break;
        }
        case 'N': fail(pos - 2, "\\N{...} escapes in string literals are not supported");
        default:
          if (e >= '0' && e <= '7') {
            uint32_t cp = static_cast<uint32_t>(e - '0');
            for (int i = 0; i < 2 && pos < src_.size() && src_[pos] >= '0' && src_[pos] <= '7'; ++i)
              cp = cp * 8 + static_cast<uint32_t>(src_[pos++] - '0');
            append_utf8(out, cp);
          } else {
            out += '\\';
            out += e;
          }
      }
    }
    push(Tok::String, std::move(out), start);
    return pos + 1;
  }

  const std::string& src_;
  LexOptions opts_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> lex(const std::string& src, const LexOptions& opts) { return Lexer(src, opts).run(); }

}  // namespace contrail::jinja
