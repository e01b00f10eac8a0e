// GGUF -> ModelFile: hyperparameters from the "<arch>.*" keys (named as llama.cpp names them),
// then every weight the architecture needs, checked for presence, shape and dtype. Tensors are
// views into the GGUF mapping.
#include <fmt/format.h>

#include <cmath>
#include <string_view>
#include <unordered_map>

#include "contrail/core/error.h"
#include "contrail/model/arch.h"
#include "contrail/model/gguf.h"
#include "contrail/model/model_file.h"
#include "model/loader_detail.h"

namespace contrail {
namespace detail {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += fmt::format("{}{}", i ? ", " : "", s[i]);
  return out + ")";
}

bool supported_matrix_dtype(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::Q8_0;
}

namespace {

ModelConfig read_config(const GgufFile& g) {
  const std::string& src = g.path();
  ModelConfig c;
  c.arch = g.get_string("general.architecture");
  const ArchTraits* traits = nullptr;
  try {
    traits = &arch_traits(c.arch);
  } catch (const FormatError& e) {
    throw FormatError(fmt::format("{}: general.architecture: {}", src, e.what()));
  }
  c.name = g.get_string_opt("general.name").value_or("");
  const std::string a = c.arch + ".";
  c.n_ctx_train = g.get_int(a + "context_length");
  c.n_embd = g.get_int(a + "embedding_length");
  c.n_layer = g.get_int(a + "block_count");
  c.n_ff = g.get_int(a + "feed_forward_length");
  c.n_head = g.get_int(a + "attention.head_count");
  c.n_head_kv = g.get_int(a + "attention.head_count_kv", c.n_head);
  if (g.find(a + "attention.key_length")) {
    c.head_dim = g.get_int(a + "attention.key_length");
  } else if (c.n_head > 0) {
    if (c.n_embd % c.n_head != 0)
      throw FormatError(fmt::format("{}: {}embedding_length {} is not a multiple of {}attention.head_count {} and {}"
                                    "attention.key_length is absent",
                                    src, a, c.n_embd, a, c.n_head, a));
    c.head_dim = c.n_embd / c.n_head;
  }
  const int64_t value_dim = g.get_int(a + "attention.value_length", c.head_dim);
  if (value_dim != c.head_dim)
    throw FormatError(fmt::format("{}: {}attention.value_length {} differs from the key length {} (not supported yet)",
                                  src, a, value_dim, c.head_dim));

  c.rope.n_rot = g.get_int(a + "rope.dimension_count", c.head_dim);
  c.rope.freq_base = static_cast<float>(g.get_float(a + "rope.freq_base", 10000.0));
  c.rope.mode = traits->rope_mode;
  // Like llama.cpp: a scaling factor (or the older rope.scale_linear) means linear scaling
  // unless rope.scaling.type says otherwise; freq_scale = 1 / factor.
  const std::string scaling = g.get_string_opt(a + "rope.scaling.type").value_or("linear");
  if (scaling != "linear" && scaling != "none")
    throw FormatError(fmt::format("{}: {}rope.scaling.type '{}' is not supported yet (supported: none, linear)", src, a,
                                  scaling));
  const double factor = g.get_float(a + "rope.scaling.factor", g.get_float(a + "rope.scale_linear", 0.0));
  c.rope.freq_scale = factor == 0.0 ? 1.f : static_cast<float>(1.0 / factor);
  // Llama 3.1 scaling is not a key: the converter writes the per-pair divisors as a tensor.
  c.rope_freq_factors = g.find_tensor("rope_freqs.weight") != nullptr;
  c.norm_eps = static_cast<float>(g.get_float(traits->norm == NormKind::LayerNorm
                                                  ? a + "attention.layer_norm_epsilon"
                                                  : a + "attention.layer_norm_rms_epsilon"));
  if (traits->swa != SwaLayers::None) c.sliding_window = g.get_int(a + "attention.sliding_window", 0);
  c.attn_softcap = static_cast<float>(g.get_float(a + "attn_logit_softcapping", 0.0));
  c.final_softcap = static_cast<float>(g.get_float(a + "final_logit_softcapping", 0.0));
  // No GGUF key holds the attention scale. llama.cpp picks Gemma 2's by size class: the 27B
  // (46 layers) uses 1/sqrt(n_embd / n_head) (its query_pre_attn_scalar 144), every other size
  // 1/sqrt(head_dim); we do the same so that its GGUFs mean what they mean to llama.cpp.
  if (c.arch == "gemma2" && c.n_layer == 46 && c.n_head > 0 && c.n_embd / c.n_head > 0)
    c.attn_scale = 1.f / std::sqrt(static_cast<float>(c.n_embd / c.n_head));

  // Vocabulary size: the tokenizer's token list, else the explicit key, else the embedding rows.
  if (const GgufValue* tokens = g.find("tokenizer.ggml.tokens")) {
    if (tokens->type != GgufType::ARRAY || tokens->elem_type != GgufType::STRING)
      throw FormatError(fmt::format("{}: key 'tokenizer.ggml.tokens' is not an array of strings", src));
    c.n_vocab = static_cast<int64_t>(tokens->array_size());
  } else if (g.find(a + "vocab_size")) {
    c.n_vocab = g.get_int(a + "vocab_size");
  } else if (const GgufTensorInfo* emb = g.find_tensor("token_embd.weight")) {
    c.n_vocab = emb->shape.front();
  }
  c.tied_embeddings = g.find_tensor("output.weight") == nullptr;
  c.validate(src);
  return c;
}

}  // namespace

void read_gguf_weights(const std::shared_ptr<GgufFile>& gguf, ModelFile& out) {
  const GgufFile& g = *gguf;
  const std::string& src = g.path();
  out.format = ModelFormat::Gguf;
  out.path = src;
  out.gguf = gguf;
  out.config = read_config(g);
  const ModelConfig& c = out.config;

  std::unordered_map<std::string_view, const GgufTensorInfo*> by_name;  // views into g.tensors()
  for (const GgufTensorInfo& t : g.tensors()) by_name.emplace(t.name, &t);
  for_each_weight(c, arch_traits(c.arch), [&](const ExpectedWeight& e) {
    const auto it = by_name.find(e.name);
    const GgufTensorInfo* t = it == by_name.end() ? nullptr : it->second;
    if (!t)
      throw FormatError(fmt::format("{}: required tensor '{}' {} is missing ({} {} layers, {} tensors in the file)", src,
                                    e.name, shape_str(e.shape), c.n_layer, c.arch, g.tensors().size()));
    if (e.f32_kind && t->dtype != DType::F32)
      throw FormatError(fmt::format("{}: tensor '{}' has dtype {}, but {} must be f32", src, e.name,
                                    dtype_name(t->dtype), e.f32_kind));
    if (!supported_matrix_dtype(t->dtype))
      throw FormatError(fmt::format("{}: tensor '{}' has dtype {}, which is not supported yet "
                                    "(supported: f32, f16, bf16, q8_0)",
                                    src, e.name, dtype_name(t->dtype)));
    if (t->shape != e.shape)
      throw FormatError(fmt::format(
          "{}: tensor '{}' has shape {}, expected {} (n_vocab {}, n_embd {}, n_head {}, n_head_kv {}, head_dim {}, "
          "n_ff {})",
          src, e.name, shape_str(t->shape), shape_str(e.shape), c.n_vocab, c.n_embd, c.n_head, c.n_head_kv,
          c.head_dim, c.n_ff));
    out.tensors.emplace(e.name, g.tensor(e.name));
  });
  // Every expected tensor was found once (names are unique), so any other tensor is one the
  // architecture does not use (biases it has no trait for, Phi-3's rope_factors_long, ...).
  // Ignoring it would give wrong results.
  if (out.tensors.size() != g.tensors().size())
    for (const GgufTensorInfo& t : g.tensors())
      if (!out.tensors.count(t.name))
        throw FormatError(fmt::format("{}: unexpected tensor '{}' {} {}: not used by the supported {} architecture",
                                      src, t.name, dtype_name(t.dtype), shape_str(t.shape), c.arch));

  out.metadata.clear();
  for (const GgufKV& kv : g.metadata()) out.metadata.emplace_back(kv.key, kv.value.to_display());
}

}  // namespace detail

ModelFile load_gguf_model(const std::string& path) {
  ModelFile m;
  detail::read_gguf_weights(GgufFile::open(path), m);
  m.vocab = read_gguf_vocab(*m.gguf);
  if (static_cast<int64_t>(m.vocab.tokens.size()) != m.config.n_vocab)
    throw FormatError(fmt::format("{}: the tokenizer has {} tokens but the model's n_vocab is {}", path,
                                  m.vocab.tokens.size(), m.config.n_vocab));
  return m;
}

}  // namespace contrail
