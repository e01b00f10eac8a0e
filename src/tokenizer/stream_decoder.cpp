#include "contrail/tokenizer/tokenizer.h"
#include "contrail/core/utf8.h"

namespace contrail {

StreamDecoder::StreamDecoder(const Tokenizer& tok, bool strip_leading_space)
    : tok_(&tok), strip_leading_space_(strip_leading_space) {}

std::string StreamDecoder::push(int32_t id) {
  std::string bytes = tok_->token_to_bytes(id);
  // llama2.c drops the SentencePiece dummy-prefix space of the first piece after BOS; tokens that
  // render as nothing (BOS itself, other control tokens) do not count as the first piece.
  if (first_ && !bytes.empty()) {
    first_ = false;
    if (strip_leading_space_ && bytes.front() == ' ') bytes.erase(0, 1);
  }
  pending_ += bytes;

  // Emit every complete character; replace ill-formed bytes; keep a trailing sequence that may
  // still be completed by the next token.
  std::string out;
  std::string_view rest = pending_;
  while (!rest.empty()) {
    const utf8::Step st = utf8::next(rest);
    if (st.kind == utf8::Step::Incomplete) break;
    if (st.kind == utf8::Step::Valid)
      out.append(rest.substr(0, st.length));
    else
      out.append(utf8::kReplacement);
    rest.remove_prefix(st.length);
  }
  pending_.erase(0, pending_.size() - rest.size());
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  utf8::append_sanitized(out, pending_);
  pending_.clear();
  return out;
}

}  // namespace contrail
