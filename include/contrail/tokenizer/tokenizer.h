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
  // parse_special: recognise control token text (e.g. "<s>") inside `text`; user-defined token
  // text is always recognised, as in llama.cpp.
  // Matches llama.cpp's llama_tokenize for the SentencePiece vocab (llm_tokenizer_spm), including
  // the dummy-prefix space before every raw-text run that starts the input or follows a special
  // token when vocab.add_space_prefix. Throws Error for a BytePair vocab (not supported yet).
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special = false) const;

  // Raw bytes a token stands for: U+2581 -> ' ', "<0x0A>" byte tokens -> that byte; control
  // tokens -> "" unless render_special. May be a partial UTF-8 sequence.
  // Throws InvalidArgument for an id outside [0, n_vocab), Error for a BytePair vocab.
  std::string token_to_bytes(int32_t id, bool render_special = false) const;
  // Concatenated bytes of the ids, invalid UTF-8 left as is. The dummy-prefix space is kept:
  // decode(encode("Hi")) == " Hi" when add_space_prefix (StreamDecoder can strip it).
  std::string decode(std::span<const int32_t> ids, bool render_special = false) const;

  const VocabData& vocab() const;
  int64_t n_vocab() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  // End of generation: EOS, and tokens whose text llama.cpp treats as EOT/EOG ("<|end|>",
  // "<|eot_id|>", "<|im_end|>", "<end_of_turn>", ...; such tokens also count as control tokens).
  bool is_eog(int32_t id) const;

 private:
  struct Impl;
  Impl* impl_;
};

// Turns a stream of tokens into text that is always valid UTF-8: bytes of an incomplete
// multi-byte sequence are held back until completed; a sequence that can never complete is
// emitted as U+FFFD (one per maximal ill-formed subpart). Optionally strips the leading space of
// the first piece that renders as non-empty bytes (llama2.c style: the piece after BOS).
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
