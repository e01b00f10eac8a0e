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
  SentencePiece,  // GGUF tokenizer.ggml.model == "llama": scores, byte fallback, U+2581 for space
  BytePair,       // GGUF "gpt2": byte-level BPE with merges (later issue)
};

struct VocabData {
  VocabKind kind = VocabKind::SentencePiece;
  std::string model;  // tokenizer.ggml.model as written ("llama", "gpt2", ...)
  std::string pre;    // tokenizer.ggml.pre
  std::vector<std::string> tokens;  // (n_vocab) raw piece text as stored
  std::vector<float> scores;        // (n_vocab) or empty
  std::vector<TokenType> types;     // (n_vocab)
  std::vector<std::string> merges;  // BytePair only
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
  bool add_bos = true;
  bool add_eos = false;
  bool add_space_prefix = true;  // SentencePiece "add dummy prefix"
  std::string chat_template;     // tokenizer.chat_template if present

  // Throws FormatError naming `source` if sizes disagree or special ids are out of range (-1 =
  // unset), add_bos/add_eos need an unset id, a type is not a TokenType, a Byte token is not
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
