// Text <-> token ids for a VocabData. Thread-safe for concurrent const use.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "contrail/tokenizer/vocab.h"

namespace contrail {

class Tokenizer {
 public:
  explicit Tokenizer(VocabData vocab);  // validates; throws FormatError
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // add_special: prepend BOS (and append EOS) as the vocab says.
  // parse_special: recognise control/user-defined token text (e.g. "<s>") inside `text`.
  // Matches llama.cpp's llama_tokenize for the SentencePiece vocab (llm_tokenizer_spm).
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special = false) const;

  // Raw bytes a token stands for: U+2581 -> ' ', "<0x0A>" byte tokens -> that byte; control
  // tokens -> "" unless render_special. May be a partial UTF-8 sequence.
  std::string token_to_bytes(int32_t id, bool render_special = false) const;
  // Concatenated bytes of the ids, invalid UTF-8 left as is.
  std::string decode(std::span<const int32_t> ids, bool render_special = false) const;

  const VocabData& vocab() const;
  int64_t n_vocab() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  bool is_eog(int32_t id) const;  // end of generation (EOS, and EOT-like tokens when known)

 private:
  struct Impl;
  Impl* impl_;
};

// Turns a stream of tokens into text that is always valid UTF-8: bytes of an incomplete
// multi-byte sequence are held back until completed; a sequence that can never complete is
// emitted as U+FFFD. Optionally strips the leading space of the first piece (llama2.c style).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool strip_leading_space = false);
  std::string push(int32_t id);  // text ready to print (possibly empty)
  std::string flush();           // whatever is pending at the end, completed with U+FFFD

 private:
  const Tokenizer* tok_;
  bool strip_leading_space_;
  bool first_ = true;
  std::string pending_;
};

}  // namespace contrail
