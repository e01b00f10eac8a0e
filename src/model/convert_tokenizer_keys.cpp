// tokenizer.* keys of a VocabData: the inverse of gguf_vocab.cpp's read_gguf_vocab, with the key
// names and value types llama.cpp's converter (gguf-py SpecialVocab / GGUFWriter) uses.
#include <fmt/format.h>

#include <string>
#include <vector>

#include "contrail/core/error.h"
#include "contrail/model/convert.h"

namespace contrail {

void write_tokenizer_keys(GgufWriter& w, const VocabData& v, const std::string& source) {
  if (v.tokens.empty())
    throw InvalidArgument(fmt::format("{}: the model has no tokenizer vocabulary to write (tokenizer.ggml.tokens "
                                      "would be empty)",
                                      source));
  try {
    v.validate(source);
  } catch (const FormatError& e) {
    throw InvalidArgument(fmt::format("convert: invalid vocabulary: {}", e.what()));
  }
  // tokenizer.ggml.model names the algorithm; a vocabulary built from HF files may leave it empty.
  const std::string model = !v.model.empty() ? v.model : v.kind == VocabKind::SentencePiece ? "llama" : "gpt2";
  std::string pre = v.pre;
  if (pre.empty()) {
    // llama.cpp's SentencePiece path writes "default"; a byte-level BPE vocabulary is only usable
    // with the pre-tokenizer that llama.cpp recognises by this name.
    if (v.kind != VocabKind::SentencePiece)
      throw InvalidArgument(fmt::format("{}: the byte-level BPE vocabulary has no pre-tokenizer name "
                                        "(tokenizer.ggml.pre); llama.cpp could not tokenize with the converted file",
                                        source));
    pre = "default";
  }
  w.set_string("tokenizer.ggml.model", model);
  w.set_string("tokenizer.ggml.pre", pre);
  w.set_string_array("tokenizer.ggml.tokens", v.tokens);
  if (!v.scores.empty()) w.set_f32_array("tokenizer.ggml.scores", v.scores);
  std::vector<int32_t> types(v.types.size());  // (n_vocab) TokenType values
  for (size_t i = 0; i < types.size(); ++i) types[i] = static_cast<int32_t>(v.types[i]);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  if (!v.merges.empty()) w.set_string_array("tokenizer.ggml.merges", v.merges);

  // Special ids: written whenever set (u32, as gguf-py writes them), so no reader has to know
  // llama.cpp's per-model defaults.
  const std::pair<const char*, int32_t> ids[] = {{"tokenizer.ggml.bos_token_id", v.bos_id},
                                                 {"tokenizer.ggml.eos_token_id", v.eos_id},
                                                 {"tokenizer.ggml.unknown_token_id", v.unk_id},
                                                 {"tokenizer.ggml.padding_token_id", v.pad_id},
                                                 {"tokenizer.ggml.eot_token_id", v.eot_id}};
  for (const auto& [key, id] : ids)
    if (id >= 0) w.set_u32(key, static_cast<uint32_t>(id));
  w.set_bool("tokenizer.ggml.add_bos_token", v.add_bos);
  w.set_bool("tokenizer.ggml.add_eos_token", v.add_eos);
  // llama.cpp (and read_gguf_vocab) default: a space prefix for SentencePiece ("llama") only.
  if (v.add_space_prefix != (model == "llama")) w.set_bool("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
  if (!v.chat_template.empty()) w.set_string("tokenizer.chat_template", v.chat_template);
}

}  // namespace contrail
