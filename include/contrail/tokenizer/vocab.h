// Vocabulary data as stored in model files, independent of the file format. The GGUF reader
// (model/) and the llama2.c tokenizer.bin reader (tokenizer/) both produce a VocabData.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace contrail {

// GGUF tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
  Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6,
};

enum class VocabKind {
  // GGUF tokenizer.ggml.model == "llama", SentencePiece tokenizer.model, and HF tokenizer.json BPE
  // with byte_fallback (Llama 2, Mistral, Gemma): pieces spell spaces as U+2581, unknown bytes fall
  // back to "<0xHH>" tokens. Pieces are merged by score, or by merge rank when `merges` is set.
  SentencePiece,
  // GGUF "gpt2" and HF tokenizer.json byte-level BPE (GPT-2, Llama 3, Qwen2): text is split by
  // the pre-tokenizer patterns, each piece's bytes are spelled with GPT-2's byte-to-unicode map,
  // then merged by merge rank.
  BytePair,
};

struct VocabData {
  VocabKind kind = VocabKind::SentencePiece;
  std::string model;  // tokenizer.ggml.model as written ("llama", "gpt2", ...)
  std::string pre;    // tokenizer.ggml.pre
  std::vector<std::string> tokens;  // (n_vocab) raw piece text as stored
  std::vector<float> scores;        // (n_vocab) or empty
  std::vector<TokenType> types;     // (n_vocab)
  // Merge rules "left right" (pieces as spelled in `tokens`), best rank first. Required for
  // BytePair; for SentencePiece, when non-empty, merging follows these ranks instead of scores.
  std::vector<std::string> merges;
  // Pre-tokenizer: regexes (PCRE2 syntax, Unicode properties) applied in order, each splitting
  // the pieces left by the previous one into matches and the text between them (HF
  // Split(behavior=Isolated) / llama.cpp's unicode_regex_split). Empty: the text is one piece.
  // A GGUF vocab gets them from its tokenizer.ggml.pre name, an HF tokenizer.json from its
  // pre_tokenizer; an unknown pre name is a FormatError, never a silent default.
  std::vector<std::string> pre_patterns;
  bool ignore_merges = false;  // a pre-token that is itself a token is not merged (Llama 3)
  bool normalize_nfc = false;  // NFC-normalise raw text before pre-tokenizing (HF Qwen2 normalizer)
  bool byte_fallback = true;   // SentencePiece: unknown characters become <0xHH> byte tokens, else unk
  bool clean_up_spaces = false;  // decode: " ." -> "." etc. (HF clean_up_tokenization_spaces)
  // Added tokens that are matched in raw text only with surrounding whitespace absorbed (HF
  // AddedToken lstrip/rstrip), by id; empty = none.
  std::vector<int32_t> lstrip_ids, rstrip_ids;
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
  int32_t eot_id = -1;  // end of turn (<|eot_id|>, <|im_end|>, <end_of_turn>...) when the file names one
  // Further end-of-generation ids named by the file (HF generation_config.json eos_token_id list
  // beyond eos_id); each in [0, n_vocab).
  std::vector<int32_t> eog_ids;
  bool add_bos = true;
  bool add_eos = false;
  bool add_space_prefix = true;  // SentencePiece "add dummy prefix"
  std::string chat_template;     // tokenizer.chat_template if present

  // Throws FormatError naming `source` if sizes disagree or special ids (bos/eos/unk/pad/eot,
  // lstrip/rstrip) are out of range (-1 = unset), add_bos/add_eos need an unset id, a type is not a TokenType, a Byte token is not
  // spelled "<0xHH>", a score is NaN, two tokens have the same non-empty text, or a BytePair
  // vocab has no merges.
  void validate(const std::string& source) const;
};

// Reads a llama2.c tokenizer.bin: int32 max_token_length, then n_vocab x (f32 score, int32 len,
// len bytes). llama2.c conventions: UNK 0, BOS 1, EOS 2; "<0xNN>" pieces are byte tokens; add_bos.
// n_vocab comes from the model header. Validates lengths against the file; throws FormatError.
// The exporter's ' ' (for U+2581) and "\n<s>\n" / "\n</s>\n" are mapped back, so the result
// equals the GGUF vocabulary of the same model.
VocabData load_llama2c_vocab(const std::string& path, int64_t n_vocab);

}  // namespace contrail
