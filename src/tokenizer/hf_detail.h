// Internal: shared pieces of the Hugging Face tokenizer loaders (hf_*.cpp) and in-memory entry
// points for tests and fuzzing. Not part of the public API (src/ is a private include directory).
#pragma once
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "contrail/tokenizer/vocab.h"

namespace contrail::detail {

using Json = nlohmann::json;

// Upper bound on vocabulary sizes accepted from files (ids, padding, piece counts): 4M tokens,
// 16x the largest real vocabularies, so hostile sizes fail before anything is allocated.
inline constexpr size_t kMaxHfVocab = size_t{1} << 22;

// In-memory forms of load_hf_tokenizer_json / load_sentencepiece_model / load_tiktoken_model;
// `source` names the input in error messages.
VocabData parse_hf_tokenizer_json(std::string_view text, const std::string& source);
VocabData parse_sentencepiece_model(const uint8_t* data, size_t size, const std::string& source);
VocabData parse_tiktoken_model(std::string_view text, const std::string& source);

// Parses JSON text; throws FormatError naming `source` and the byte offset on a syntax error.
Json parse_json(std::string_view text, const std::string& source);
// Reads and parses a JSON file (at most 1 GiB).
Json read_json_file(const std::string& path);

// Short, bounded description of a JSON value for error messages: strings quoted and cut to 60
// bytes, numbers/bools/null as written, arrays and objects by size (never dumped whole).
std::string describe(const Json& j);

// Typed accessors: `path` is the JSON path of `j` (e.g. "model.vocab['a']"), used in errors like
// "tokenizer.json: model.merges[3] is 17, expected a string".
[[noreturn]] void json_type_error(const std::string& source, const std::string& path, const Json& j,
                                  const char* expected);
const Json& json_object(const Json& j, const std::string& source, const std::string& path);
const Json& json_array(const Json& j, const std::string& source, const std::string& path);
const std::string& json_string(const Json& j, const std::string& source, const std::string& path);
bool json_bool(const Json& j, const std::string& source, const std::string& path);
// An integer in [lo, hi] (floats such as 1.0 are rejected).
int64_t json_int(const Json& j, const std::string& source, const std::string& path, int64_t lo, int64_t hi);
// Member `key` of object `obj`, or nullptr when absent or null.
const Json* json_find(const Json& obj, std::string_view key);

// "<0xHH>" (SentencePiece byte-fallback piece).
bool is_byte_piece(std::string_view piece);
// llama.cpp convert_hf_to_gguf.py does_token_look_special: added tokens it types Control even
// when the file calls them non-special ("<pad>", "<mask>", "<2mass>", "[@BOS@]", "<|...|>",
// "<｜...｜>", "<unused...>").
bool looks_special(std::string_view text);
// Id of the token whose text is exactly `text`, or -1.
int32_t find_token(const VocabData& v, std::string_view text);
// Makes `id` a valid index: grows tokens/types (and scores when non-empty, with `pad_score`)
// with "[PAD<i>]" Unused tokens. Throws FormatError (naming source/what) when id >= kMaxHfVocab.
void grow_vocab(VocabData& v, int64_t id, float pad_score, const std::string& source, const std::string& what);

}  // namespace contrail::detail
