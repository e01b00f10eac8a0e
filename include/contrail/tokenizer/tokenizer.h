// Text <-> token ids for a VocabData. Thread-safe for concurrent const use.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "contrail/core/prompt_segment.h"
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
  // text is always recognised, as in llama.cpp. Special-token text is never split; tokens listed
  // in vocab.lstrip_ids / rstrip_ids also swallow the whitespace before / after them.
  // Matches llama.cpp's llama_tokenize:
  //  - SentencePiece (llm_tokenizer_spm), including the dummy-prefix space before every raw-text
  //    run that starts the input or follows a special token when vocab.add_space_prefix; with
  //    vocab.merges the pieces merge by rank instead of score (HF BPE with byte_fallback).
  //  - BytePair (llm_tokenizer_bpe): vocab.pre_patterns split the text, each word's bytes are
  //    merged by rank in GPT-2's byte-level alphabet (vocab.ignore_merges, vocab.normalize_nfc).
  //    Ill-formed UTF-8 never fails: like llama.cpp each byte that does not start a (leniently
  //    decoded) character becomes U+FFFD.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special = false) const;
  // A rendered chat prompt (ChatTemplate::apply_segments): encodes join_segments(segments) as
  // encode(text, add_special, /*parse_special=*/true) does, except that a control token is
  // recognised only where its whole text lies inside trusted segments; control-token text that
  // overlaps an untrusted segment stays ordinary text, tokenized with the text around it
  // (user-defined tokens are recognised everywhere, as with parse_special=false). The text is not
  // split at segment boundaries: while no untrusted segment holds (part of) a control token's
  // text, the ids equal encode(text, add_special, true).
  std::vector<int32_t> encode_segments(std::span<const PromptSegment> segments, bool add_special) const;

  // Raw bytes a token stands for: U+2581 -> ' ', "<0x0A>" byte tokens -> that byte, byte-level
  // BPE pieces -> their bytes; control tokens -> "" unless render_special (user-defined tokens
  // render as their text, with U+2581 -> ' ' in SentencePiece vocabularies). May be a partial
  // UTF-8 sequence.
  // Throws InvalidArgument for an id outside [0, n_vocab).
  std::string token_to_bytes(int32_t id, bool render_special = false) const;
  // Concatenated bytes of the ids, invalid UTF-8 left as is, then vocab.clean_up_spaces applied
  // as llama.cpp's detokenizer does (" ." -> ".", " 's" -> "'s", ...). The dummy-prefix space is
  // kept: decode(encode("Hi")) == " Hi" when add_space_prefix (StreamDecoder can strip it).
  std::string decode(std::span<const int32_t> ids, bool render_special = false) const;

  const VocabData& vocab() const;
  int64_t n_vocab() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  // End of generation: EOS, vocab.eot_id, and tokens whose text llama.cpp treats as EOT/EOG ("<|end|>",
  // "<|eot_id|>", "<|im_end|>", "<end_of_turn>", ...; such tokens also count as control tokens).
  bool is_eog(int32_t id) const;

 private:
  struct Impl;
  // encode, where control-token matches overlapping a byte range in `plain` (sorted, disjoint)
  // are not recognised.
  std::vector<int32_t> encode_impl(std::string_view text, bool add_special, bool parse_special,
                                   std::span<const std::pair<size_t, size_t>> plain) const;
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
