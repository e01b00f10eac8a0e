// Model conversion to GGUF (`contrail convert`), producing what llama.cpp's convert_hf_to_gguf.py
// produces from the same checkpoint: the same tensor names, layouts and storage types, the same
// general.* / {arch}.* / tokenizer.* metadata keys, so llama.cpp loads the result.
//
// The source is any loaded ModelFile (a Hugging Face directory from load_hf_model in practice;
// GGUF and llama2.c sources work the same way). Its tensors already carry the GGUF names
// (model_file.h); conversion adds llama.cpp's layout changes:
//   - Q/K rows: when the source's rotary layout (config.rope.mode) differs from the one the
//     architecture's GGUF files use (ArchTraits::rope_mode), attn_q/attn_k rows (and biases) are
//     permuted per head: HF llama's rotate-halves rows become GGUF llama's adjacent pairs, exactly
//     as llama.cpp's LlamaModel.permute does.
//   - Storage types, as llama.cpp's prepare_tensors chooses them: 1-D tensors, "*_norm.weight",
//     position_embd.weight and anything not ending in ".weight" stay f32; every other matrix
//     (token_embd and output included) gets the output type; q8_0 falls back to f16 for a matrix
//     whose rows are not a multiple of 32 elements. Conversions round like gguf-py: f16 and bf16
//     to nearest even, q8_0 with GGML's reference quantizer.
// Output files are written atomically (GgufWriter): a failed or interrupted conversion leaves
// no partial file and an existing file at the output path untouched.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "contrail/core/dtype.h"
#include "contrail/model/gguf.h"
#include "contrail/model/model_config.h"
#include "contrail/model/model_file.h"
#include "contrail/tokenizer/vocab.h"

namespace contrail {

// Weight-matrix storage type of a conversion (llama.cpp's --outtype).
enum class ConvertType { F32, F16, BF16, Q8_0 };

// "f32", "f16", "bf16", "q8_0" (case-insensitive). Throws InvalidArgument naming the value and
// the supported list for anything else.
ConvertType parse_convert_type(std::string_view s);
std::string_view convert_type_name(ConvertType t);  // "f32", ...
// general.file_type (llama.cpp's LlamaFileType): ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q8_0 7, MOSTLY_BF16 32.
uint32_t gguf_file_type(ConvertType t);

// Storage type llama.cpp's converter gives tensor `name` of `shape` (row-major) under `outtype`
// (rules in the header comment).
DType gguf_tensor_dtype(std::string_view name, const std::vector<int64_t>& shape, ConvertType outtype);

// Reported after each tensor is converted, in output order.
struct ConvertProgress {
  std::string_view tensor;   // GGUF name
  size_t index = 0;          // 0-based, < count
  size_t count = 0;          // tensors in the output
  uint64_t bytes_done = 0;   // output tensor bytes converted so far (this tensor included)
  uint64_t bytes_total = 0;  // output tensor bytes in all
};

struct ConvertOptions {
  ConvertType outtype = ConvertType::F16;
  // The tokenizer to write instead of the source's (e.g. read_gguf_vocab of another GGUF). Empty
  // (no tokens): a Hugging Face source's directory is read like llama.cpp's converter reads it
  // (load_hf_vocab_for_gguf, hf_tokenizer_keys), ignoring ModelFile::vocab; other sources use
  // ModelFile::vocab.
  VocabData vocab;
  // general.name. Empty: config.name, else the source's file or directory name in llama.cpp's
  // title form ("tiny-llama" -> "Tiny Llama", "hf" -> "Hf").
  std::string name;
  // Called after each tensor; may throw to abandon the conversion (nothing is written then).
  std::function<void(const ConvertProgress&)> on_tensor;
};

struct ConvertSummary {
  size_t n_tensors = 0;
  uint64_t n_params = 0;        // elements of all written tensors (general.size_label counts these)
  uint64_t tensor_bytes = 0;    // bytes of all tensor data (without padding)
  uint64_t file_bytes = 0;      // size of the GGUF image
  // Matrices that could not take q8_0 (rows not a multiple of 32) and were stored f16.
  std::vector<std::string> f16_fallbacks;
};

// {arch}.* hyperparameter keys of `c`, named as llama.cpp names them and as load_gguf_model
// reads them back (the same ModelConfig results). For the known architectures the key set is
// llama.cpp's converter's (e.g. llama writes attention.key_length and vocab_size, qwen2 does
// not); optional keys it leaves out are ones whose absence means the same value.
void write_config_keys(GgufWriter& w, const ModelConfig& c);

// The optional tokenizer.* keys llama.cpp's converter writes for a Hugging Face directory: gguf-py's
// SpecialVocab (special ids from tokenizer_config.json's *_token resolved through tokenizer.json's
// added_tokens, then config.json's *_token_id, first found wins, ids >= n_vocab skipped;
// add_bos/add_eos/add_sep from tokenizer.json's TemplateProcessing / RobertaProcessing
// post-processor, overridden by tokenizer_config.json's add_*_token booleans) and the model
// class's set_vocab (LlamaModel: add_space_prefix = tokenizer_config.json's add_prefix_space;
// Gemma / Gemma 2: add_space_prefix false). Keys are the GGUF names ("tokenizer.ggml.bos_token_id",
// "tokenizer.ggml.seperator_token_id" [sic, gguf-py's spelling], "tokenizer.ggml.add_sep_token"...).
// Not reproduced: the Gemma converter's hard-coded CodeGemma eot_token_id 107 (wrong for other
// vocabularies). Throws FormatError naming the file for unreadable JSON.
struct HfTokenizerKeys {
  std::vector<std::pair<std::string, uint32_t>> ids;  // GGUF key -> token id
  std::vector<std::pair<std::string, bool>> flags;    // GGUF key -> value (add_*_token, add_space_prefix)
};
HfTokenizerKeys hf_tokenizer_keys(const std::string& dir, const std::string& arch, size_t n_vocab);

// tokenizer.* keys of `v` (tokenizer.ggml.model/pre/tokens/scores/token_type/merges, special
// token ids, add_bos/add_eos/add_space_prefix, tokenizer.chat_template); read_gguf_vocab of the
// result gives `v` back. Without `hf`: special ids are written whenever set, add_bos/add_eos
// always, add_space_prefix only where it differs from llama.cpp's default for the tokenizer
// model. With `hf` (a Hugging Face source): exactly hf's ids and flags, plus any of v's
// ids/flags that would otherwise read back differently (absent keys mean llama.cpp's defaults).
// A byte-level BPE vocabulary without a pre-tokenizer name gets the name llama.cpp knows for
// the same split regexes and ignore_merges ("gpt-2", "llama-bpe", "qwen2", ...). Throws
// InvalidArgument naming `source` when `v` is empty, fails VocabData::validate, or is a
// byte-level BPE vocabulary whose pre-tokenizer matches no name llama.cpp knows.
void write_tokenizer_keys(GgufWriter& w, const VocabData& v, const std::string& source,
                          const HfTokenizerKeys* hf = nullptr);

// The vocabulary of a Hugging Face directory as llama.cpp's converter reads it: for every family
// but gpt2, tokenizer.model (SentencePiece) is preferred over tokenizer.json when both exist
// (llama.cpp's _set_vocab_sentencepiece comes first), with the directory's added tokens,
// tokenizer_config.json and config.json padding applied as load_hf_tokenizer does.
VocabData load_hf_vocab_for_gguf(const std::string& dir, const std::string& arch);

// The complete GGUF (metadata and converted tensors) of `m`, not yet written. The tokenizer is
// opts.vocab, else (Hugging Face source) the directory's tokenizer files read as llama.cpp's
// converter reads them, else m.vocab. A Hugging Face source also gets the {arch}.* keys llama.cpp
// takes from config.json beyond ModelConfig (Phi-3's attention.sliding_window). Families without
// RoPE (GPT-2) keep their Q/K rows as they are. Throws InvalidArgument when the model has no
// vocabulary or a tensor cannot be converted, naming the tensor; FormatError for unreadable
// tokenizer files; rethrows whatever opts.on_tensor throws.
// The tensors are converted lazily, when the writer serializes or writes them, one at a time (so
// opts.on_tensor runs then, and its exceptions surface there); the writer keeps the source tensor
// views (and their memory) alive.
GgufWriter build_gguf(const ModelFile& m, const ConvertOptions& opts, ConvertSummary* summary = nullptr);

// build_gguf, then an atomic write to out_path. Throws Error naming out_path when its directory
// does not exist or the file cannot be written.
ConvertSummary convert_to_gguf(const ModelFile& m, const std::string& out_path, const ConvertOptions& opts);

}  // namespace contrail
