// Internal: the pre-tokenizer regexes of the byte-level BPE vocabularies, by the name GGUF files
// give them in tokenizer.ggml.pre (the names llama.cpp's llama-vocab.cpp knows, with the same
// regexes and per-name defaults). Shared by the GGUF vocab reader and the HF tokenizer.json
// reader (which needs kGpt2Pattern for ByteLevel(use_regex=true)).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace contrail::detail {

// GPT-2's pre-tokenizer regex (also HF ByteLevel's built-in split when use_regex is true).
extern const std::string_view kGpt2Pattern;

struct PreTokenizerSpec {
  std::vector<std::string> patterns;  // applied in order, see VocabData::pre_patterns
  bool ignore_merges = false;         // VocabData::ignore_merges
  bool clean_up_spaces = true;        // VocabData::clean_up_spaces (llama.cpp's clean_spaces)
  bool add_bos = false;               // default for tokenizer.ggml.add_bos_token
};

// The spec for a tokenizer.ggml.pre name, or nullptr if the name is not known.
// "" (key absent) is llama.cpp's "default".
const PreTokenizerSpec* find_pre_tokenizer(std::string_view name);

// Every known name, sorted, comma-separated (for error messages).
std::string known_pre_tokenizer_names();

}  // namespace contrail::detail
