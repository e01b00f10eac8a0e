// VocabData from the GGUF tokenizer.* keys, with llama.cpp's defaults for absent keys.
#include <fmt/format.h>

#include <cstdint>
#include <string>

#include "contrail/core/error.h"
#include "contrail/model/gguf.h"
#include "contrail/model/model_file.h"
#include "contrail/tokenizer/vocab.h"
#include "tokenizer/pre_tokenizer_patterns.h"

namespace contrail {

namespace {

// A special-token id key: absent, or set to the "none" sentinel (-1 / 0xFFFFFFFF as written by the
// converters), keeps `def`. Other values are stored as they are; validate() range-checks them.
int32_t read_token_id(const GgufFile& g, const char* key, int32_t def) {
  if (!g.find(key)) return def;
  const int64_t v = g.get_int(key);
  if (v == -1 || v == 0xFFFFFFFFll) return def;
  if (v < 0 || v > INT32_MAX)
    throw FormatError(fmt::format("{}: {} = {} is not a valid token id", g.path(), key, v));
  return static_cast<int32_t>(v);
}

// tokenizer.ggml.scores: FLOAT32 in practice; llama.cpp also accepts INT32.
std::vector<float> read_scores(const GgufFile& g, const char* key) {
  const GgufValue* v = g.find(key);
  if (!v) return {};
  if (v->type != GgufType::ARRAY)
    throw FormatError(fmt::format("{}: {} has type {}, expected an array of float32", g.path(), key,
                                  gguf_type_name(v->type)));
  std::vector<float> out;
  switch (v->elem_type) {
    case GgufType::FLOAT32:
    case GgufType::FLOAT64:
      out.resize(v->array_size());
      for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(v->float_at(i));
      break;
    case GgufType::INT32:
      out.resize(v->array_size());
      for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(v->int_at(i));
      break;
    default:
      throw FormatError(fmt::format("{}: {} is an array of {}, expected float32", g.path(), key,
                                    gguf_type_name(v->elem_type)));
  }
  return out;
}

}  // namespace

VocabData read_gguf_vocab(const GgufFile& g) {
  VocabData v;
  v.model = g.get_string("tokenizer.ggml.model");
  v.pre = g.get_string_opt("tokenizer.ggml.pre").value_or("");

  // llama.cpp's defaults per tokenizer model.
  int32_t def_bos, def_eos, def_unk;
  if (v.model == "llama") {
    v.kind = VocabKind::SentencePiece;
    def_bos = 1, def_eos = 2, def_unk = 0;
    v.add_bos = true;
    v.add_space_prefix = true;
  } else if (v.model == "gpt2") {
    v.kind = VocabKind::BytePair;
    def_bos = 11, def_eos = 11, def_unk = -1;
    v.add_bos = false;
    v.add_space_prefix = false;
    v.merges = g.get_string_array("tokenizer.ggml.merges");
    // The pre-tokenizer name picks the split regexes and llama.cpp's per-name defaults.
    const detail::PreTokenizerSpec* spec = detail::find_pre_tokenizer(v.pre);
    if (!spec)
      throw FormatError(fmt::format("{}: tokenizer.ggml.pre '{}' is not a known pre-tokenizer (known: {})", g.path(),
                                    v.pre, detail::known_pre_tokenizer_names()));
    v.pre_patterns = spec->patterns;
    v.ignore_merges = spec->ignore_merges;
    v.clean_up_spaces = spec->clean_up_spaces;
    v.add_bos = spec->add_bos;
  } else {
    throw FormatError(fmt::format("{}: tokenizer.ggml.model '{}' is not supported (supported: 'llama', 'gpt2')",
                                  g.path(), v.model));
  }
  v.add_eos = false;

  v.tokens = g.get_string_array("tokenizer.ggml.tokens");
  const size_t n = v.tokens.size();
  v.scores = read_scores(g, "tokenizer.ggml.scores");
  if (g.find("tokenizer.ggml.token_type")) {
    const std::vector<int64_t> types = g.get_int_array("tokenizer.ggml.token_type");
    v.types.reserve(types.size());
    // Like llama.cpp, values outside the known set mean "undefined".
    for (const int64_t t : types)
      v.types.push_back(t >= 0 && t <= static_cast<int64_t>(TokenType::Byte) ? static_cast<TokenType>(t)
                                                                             : TokenType::Undefined);
  } else {
    v.types.assign(n, TokenType::Normal);
  }

  // Default ids beyond a (tiny) vocabulary are disabled, as llama.cpp does.
  auto in_range = [n](int32_t id) { return id >= 0 && static_cast<size_t>(id) < n ? id : -1; };
  v.bos_id = read_token_id(g, "tokenizer.ggml.bos_token_id", in_range(def_bos));
  v.eos_id = read_token_id(g, "tokenizer.ggml.eos_token_id", in_range(def_eos));
  v.unk_id = read_token_id(g, "tokenizer.ggml.unknown_token_id", in_range(def_unk));
  v.pad_id = read_token_id(g, "tokenizer.ggml.padding_token_id", -1);
  v.eot_id = read_token_id(g, "tokenizer.ggml.eot_token_id", -1);
  v.add_bos = g.get_bool("tokenizer.ggml.add_bos_token", v.add_bos);
  v.add_eos = g.get_bool("tokenizer.ggml.add_eos_token", v.add_eos);
  v.add_space_prefix = g.get_bool("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
  v.chat_template = g.get_string_opt("tokenizer.chat_template").value_or("");

  v.validate(g.path());
  return v;
}

}  // namespace contrail
