// Hugging Face checkpoint directory -> ModelFile: config.json becomes the ModelConfig
// (hf_config.cpp), and the safetensors weights are renamed to the GGUF names of model_file.h and
// viewed in place. Q/K rows are not permuted: the rotary layout is declared as RopeMode::Neox
// instead (see model_file.h). Three kinds of tensor are owned copies instead of views: GPT-2's
// Conv1D matrices (stored (in, out), transposed here), Gemma's norms (stored w - 1, see
// ArchTraits::hf_norm_offset) and rope_freqs.weight (computed from rope_scaling).
#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>

#include "contrail/core/error.h"
#include "contrail/model/arch.h"
#include "contrail/model/model_file.h"
#include "contrail/model/safetensors.h"
#include "contrail/tokenizer/hf_tokenizer.h"
#include "model/hf_model.h"
#include "model/loader_detail.h"

namespace contrail {
namespace {

using nlohmann::json;
using detail::HfLayout;

// Our per-layer suffix -> the checkpoint's, and whether the HF tensor is a Conv1D (in, out) matrix.
struct LayerName {
  std::string_view ours, hf;
  bool conv1d = false;
};

// model.layers.{i}.<hf> (Llama, Mistral, Qwen2, Gemma, Gemma 2, Phi-3).
constexpr LayerName kLlamaLayer[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_q.bias", "self_attn.q_proj.bias"},
    {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.bias", "self_attn.v_proj.bias"},
    {"attn_qkv.weight", "self_attn.qkv_proj.weight"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
};
// Families with ArchTraits::post_norms (Gemma 2) name the norms around each sub-layer instead; a
// fused gate/up projection (Phi-3) is one tensor. These entries take precedence.
constexpr LayerName kPostNormLayer[] = {
    {"post_attention_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_norm.weight", "pre_feedforward_layernorm.weight"},
    {"post_ffw_norm.weight", "post_feedforward_layernorm.weight"},
};
constexpr LayerName kFusedGateUpLayer[] = {{"ffn_up.weight", "mlp.gate_up_proj.weight"}};
// transformer.h.{i}.<hf> (GPT-2).
constexpr LayerName kGpt2Layer[] = {
    {"attn_norm.weight", "ln_1.weight"},
    {"attn_norm.bias", "ln_1.bias"},
    {"attn_qkv.weight", "attn.c_attn.weight", true},
    {"attn_qkv.bias", "attn.c_attn.bias"},
    {"attn_output.weight", "attn.c_proj.weight", true},
    {"attn_output.bias", "attn.c_proj.bias"},
    {"ffn_norm.weight", "ln_2.weight"},
    {"ffn_norm.bias", "ln_2.bias"},
    {"ffn_up.weight", "mlp.c_fc.weight", true},
    {"ffn_up.bias", "mlp.c_fc.bias"},
    {"ffn_down.weight", "mlp.c_proj.weight", true},
    {"ffn_down.bias", "mlp.c_proj.bias"},
};

struct HfName {
  std::string name;
  bool conv1d = false;
};

// The checkpoint's name for a model_file.h weight. `base` is the checkpoint's module prefix
// ("model." / "transformer.", or "" for checkpoints saved from the bare base model).
HfName hf_name(const std::string& ours, const ArchTraits& tr, HfLayout layout, const std::string& base) {
  if (ours == "output.weight") return {"lm_head.weight"};
  const bool gpt2 = layout == HfLayout::Gpt2;
  if (ours == "token_embd.weight") return {base + (gpt2 ? "wte.weight" : "embed_tokens.weight")};
  if (ours == "position_embd.weight" && gpt2) return {base + "wpe.weight"};
  if (ours == "output_norm.weight") return {base + (gpt2 ? "ln_f.weight" : "norm.weight")};
  if (ours == "output_norm.bias" && gpt2) return {base + "ln_f.bias"};
  if (ours.starts_with("blk.")) {
    // "blk.{i}.<suffix>" -> "<base>layers.{i}.<hf suffix>" / "<base>h.{i}.<hf suffix>"
    const size_t dot = ours.find('.', 4);
    const std::string_view suffix = std::string_view(ours).substr(dot + 1);
    const std::string layer = fmt::format("{}{}.{}.", base, gpt2 ? "h" : "layers", ours.substr(4, dot - 4));
    auto find = [&](const auto& table) -> std::optional<HfName> {
      for (const LayerName& n : table)
        if (suffix == n.ours) return HfName{layer + std::string(n.hf), n.conv1d};
      return std::nullopt;
    };
    std::optional<HfName> hf;
    if (gpt2) {
      hf = find(kGpt2Layer);
    } else {
      if (tr.post_norms) hf = find(kPostNormLayer);
      if (!hf && tr.fused_gate_up) hf = find(kFusedGateUpLayer);
      if (!hf) hf = find(kLlamaLayer);
    }
    if (hf) return *hf;
  }
  throw Error(fmt::format("hf_name: no Hugging Face name for '{}'", ours));  // for_each_weight and the tables disagree
}

// The safetensors files of a checkpoint and which one holds each tensor (by HF name).
struct Shards {
  std::vector<std::shared_ptr<SafetensorsFile>> files;
  std::map<std::string, const SafetensorsFile*, std::less<>> owner;
};

Shards open_shards(const std::filesystem::path& dir) {
  Shards s;
  const std::filesystem::path single = dir / "model.safetensors", index = dir / "model.safetensors.index.json";
  std::error_code ec;
  if (std::filesystem::exists(single, ec)) {
    s.files.push_back(SafetensorsFile::open(single.string()));
    for (const auto& t : s.files.back()->tensors()) s.owner.emplace(t.name, s.files.back().get());
    return s;
  }
  if (!std::filesystem::exists(index, ec))
    throw FormatError(fmt::format("{}: neither model.safetensors nor model.safetensors.index.json is present "
                                  "(only safetensors checkpoints are supported)",
                                  dir.string()));
  const std::string ipath = index.string();
  const json j = detail::read_json_object_file(ipath);
  const auto map = j.find("weight_map");
  if (map == j.end() || !map->is_object())
    throw FormatError(fmt::format("{}: field 'weight_map' is missing or not an object", ipath));
  std::map<std::string, const SafetensorsFile*> by_file;
  for (const auto& [name, file] : map->items()) {
    if (!file.is_string())
      throw FormatError(fmt::format("{}: weight_map['{}'] is {}, expected a file name", ipath, name, file.dump()));
    const std::string f = file.get<std::string>();
    // Shards must lie beside the index: no directories, no "..".
    if (f.empty() || f.find('/') != std::string::npos || f.find('\\') != std::string::npos || f == "." || f == "..")
      throw FormatError(fmt::format("{}: weight_map['{}'] is '{}', expected a plain file name in the same directory",
                                    ipath, name, f));
    auto it = by_file.find(f);
    if (it == by_file.end()) {
      s.files.push_back(SafetensorsFile::open((dir / f).string()));
      it = by_file.emplace(f, s.files.back().get()).first;
    }
    if (!it->second->find(name))
      throw FormatError(fmt::format("{}: weight_map says tensor '{}' is in '{}', but that file does not hold it", ipath,
                                    name, f));
    s.owner.emplace(name, it->second);
  }
  // Tensors in the shards that the index does not list would be silently ignored.
  for (const auto& f : s.files)
    for (const auto& t : f->tensors())
      if (!s.owner.count(t.name))
        throw FormatError(fmt::format("{}: tensor '{}' is not listed in {}", f->path(), t.name, ipath));
  return s;
}

// Non-weight buffers that some transformers versions saved alongside the weights: RoPE inverse
// frequencies, GPT-2's causal-mask constants.
bool ignorable(std::string_view hf) {
  return hf.ends_with(".rotary_emb.inv_freq") || hf.ends_with(".attn.bias") || hf.ends_with(".attn.masked_bias");
}

// (in, out) -> (out, in), any plain dtype, as an owned tensor.
Tensor transposed(const Tensor& t) {
  const int64_t rows = t.dim(0), cols = t.dim(1);
  Tensor out = Tensor::empty(t.dtype(), {cols, rows});
  const size_t esize = t.row_bytes() / static_cast<size_t>(cols);
  const auto* src = static_cast<const uint8_t*>(t.data());
  auto* dst = static_cast<uint8_t*>(out.data());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      std::memcpy(dst + (static_cast<size_t>(c * rows + r)) * esize, src + static_cast<size_t>(r * cols + c) * esize,
                  esize);
  return out;
}

// w + offset of an f32 vector, as an owned tensor.
Tensor plus(const Tensor& w, float offset) {
  Tensor out = Tensor::empty(DType::F32, w.shape());
  const float* src = w.data_as<float>();
  float* dst = out.data_as<float>();
  for (int64_t i = 0; i < w.numel(); ++i) dst[i] = src[i] + offset;
  return out;
}

// The checkpoint's module prefix: "model." / "transformer.", or "" when it was saved from the
// bare base model (e.g. openai-community/gpt2, whose tensors are "wte.weight", "h.0....").
std::string module_prefix(const Shards& shards, HfLayout layout) {
  const std::string base = layout == HfLayout::Gpt2 ? "transformer." : "model.";
  const std::string embd = layout == HfLayout::Gpt2 ? "wte.weight" : "embed_tokens.weight";
  return !shards.owner.count(base + embd) && shards.owner.count(embd) ? "" : base;
}

}  // namespace

ModelFile load_hf_model(const std::string& dir_str) {
  const std::filesystem::path dir(dir_str);
  const std::string cpath = (dir / "config.json").string();
  std::error_code ec;
  // Present but not a regular file (a FIFO, a directory): MappedFile names its type below.
  if (!std::filesystem::exists(cpath, ec))
    throw FormatError(fmt::format("{}: not a Hugging Face checkpoint directory: config.json is missing", dir_str));
  const json cj = detail::read_json_object_file(cpath);
  detail::HfConfig hc = detail::read_hf_config(cj, cpath);
  ModelFile m;
  m.format = ModelFormat::HuggingFace;
  m.path = dir_str;
  m.config = hc.config;
  const ModelConfig& c = m.config;
  const ArchTraits& tr = arch_traits(c.arch);
  const Shards shards = open_shards(dir);
  const std::string base = module_prefix(shards, hc.layout);

  std::set<std::string, std::less<>> used;  // HF names taken, to find unexpected ones
  detail::for_each_weight(c, tr, [&](const detail::ExpectedWeight& e) {
    if (e.name == "rope_freqs.weight") {  // not in the checkpoint: computed from rope_scaling
      Tensor t = Tensor::empty(DType::F32, e.shape);
      std::memcpy(t.data(), hc.rope_freq_factors.data(), t.nbytes());
      m.tensors.emplace(e.name, std::move(t));
      return;
    }
    const HfName hf = hf_name(e.name, tr, hc.layout, base);
    const auto it = shards.owner.find(hf.name);
    if (it == shards.owner.end())
      throw FormatError(fmt::format("{}: required tensor '{}' {} is missing ({} {} layers, {} tensors in the "
                                    "checkpoint)",
                                    dir_str, hf.name, detail::shape_str(e.shape), c.n_layer, c.arch,
                                    shards.owner.size()));
    const SafetensorsFile::TensorInfo& t = *it->second->find(hf.name);
    if (!t.dtype || !detail::supported_matrix_dtype(*t.dtype) || (e.f32_kind && *t.dtype != DType::F32))
      throw FormatError(fmt::format("{}: tensor '{}' has dtype {}, but {} must be {}", it->second->path(), hf.name,
                                    t.st_dtype, e.f32_kind ? e.f32_kind : "weight matrices",
                                    e.f32_kind ? "F32" : "F32, F16 or BF16"));
    // Conv1D matrices are stored transposed, (in, out).
    const std::vector<int64_t> want = hf.conv1d ? std::vector<int64_t>{e.shape[1], e.shape[0]} : e.shape;
    if (t.shape != want)
      throw FormatError(fmt::format(
          "{}: tensor '{}' has shape {}, expected {} (vocab_size {}, hidden_size {}, num_attention_heads {}, "
          "num_key_value_heads {}, head_dim {}, intermediate_size {})",
          it->second->path(), hf.name, detail::shape_str(t.shape), detail::shape_str(want), c.n_vocab, c.n_embd,
          c.n_head, c.n_head_kv, c.head_dim, c.n_ff));
    Tensor view = it->second->tensor(hf.name);
    if (hf.conv1d)
      view = transposed(view);
    else if (tr.hf_norm_offset != 0 && e.f32_kind && std::string_view(e.f32_kind) == "norm weights")
      view = plus(view, tr.hf_norm_offset);
    m.tensors.emplace(e.name, std::move(view));
    used.insert(hf.name);
  });
  // Anything else is a weight the architecture does not use (attention_bias without the config
  // flag, an unknown family's extras): ignoring it would give wrong results. A tied checkpoint may
  // still carry lm_head (transformers overwrites it with the embedding).
  for (const auto& [hf, file] : shards.owner)
    if (!used.count(hf) && !ignorable(hf) && !(c.tied_embeddings && hf == "lm_head.weight"))
      throw FormatError(fmt::format("{}: unexpected tensor '{}': not used by the supported {} architecture",
                                    file->path(), hf, c.arch));

  for (const auto& [key, value] : cj.items()) m.metadata.emplace_back("config." + key, value.dump());
  // The tokenizer beside the weights (tokenizer.json, else tokenizer.model, with
  // tokenizer_config.json & co.). A weights-only directory keeps an empty vocab: Session then
  // refuses it naming the missing files, while conversion and inspection still work.
  if (std::filesystem::exists(dir / "tokenizer.json") || std::filesystem::exists(dir / "tokenizer.model")) {
    m.vocab = load_hf_tokenizer(dir_str);
    if (static_cast<int64_t>(m.vocab.tokens.size()) != c.n_vocab)
      throw FormatError(fmt::format("{}: the tokenizer has {} tokens but config.json's vocab_size is {}", dir_str,
                                    m.vocab.tokens.size(), c.n_vocab));
  }
  return m;
}

}  // namespace contrail
