// {arch}.* hyperparameter keys: the inverse of gguf_model.cpp's read_config, key for key, with the
// key set llama.cpp's converter writes for each architecture.
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "contrail/core/error.h"
#include "contrail/model/arch.h"
#include "contrail/model/convert.h"
#include "model/convert_detail.h"

namespace contrail {
namespace {

// Which optional keys llama.cpp's converter (set_gguf_parameters of the architecture's model
// class) writes. A key is left out only where the policy says so AND its absence reads back as
// the same value; writing the same set as llama.cpp keeps our files interchangeable with its.
struct KeyPolicy {
  std::string_view arch;
  bool head_count_kv;  // attention.head_count_kv
  bool head_dim_keys;  // attention.key_length / value_length
  bool vocab_size;     // vocab_size
  bool rope_base;      // rope.freq_base
  bool rope_dims;      // rope.dimension_count
  bool original_ctx;   // rope.scaling.original_context_length (Phi-3; = context_length, no reader)
};

constexpr KeyPolicy kPolicies[] = {
    // arch     kv     head_dim vocab  base   dims   orig_ctx
    {"llama", true, true, true, true, true, false},    // LlamaModel (also Mistral)
    {"qwen2", true, false, false, true, false, false},  // Qwen2Model: TextModel defaults
    {"gemma", true, true, false, false, false, false},  // GemmaModel: no rope keys
    {"gemma2", true, true, false, false, false, false},
    {"phi3", true, false, false, true, true, true},   // Phi3MiniModel
    {"gpt2", false, false, false, false, false, false},  // GPT2Model: no GQA, no RoPE
};

// Architectures not in the table get every key the reader knows.
constexpr KeyPolicy kExplicit = {"", true, true, true, true, true, false};

const KeyPolicy& policy_for(const std::string& arch) {
  for (const KeyPolicy& p : kPolicies)
    if (p.arch == arch) return p;
  return kExplicit;
}

uint32_t u32(const std::string& arch, const char* field, int64_t v) {
  if (v < 0 || v > int64_t{UINT32_MAX})
    throw InvalidArgument(fmt::format("convert: {} model config {} is {}, outside the u32 range of its GGUF key", arch,
                                      field, v));
  return static_cast<uint32_t>(v);
}

// The attention scale gguf_model.cpp derives for `c` (GGUF has no key for it); 0 = 1/sqrt(head_dim).
float derived_attn_scale(const ModelConfig& c) {
  if (c.arch == "gemma2" && c.n_layer == 46 && c.n_head > 0 && c.n_embd / c.n_head > 0)
    return 1.f / std::sqrt(static_cast<float>(c.n_embd / c.n_head));
  return 0.f;
}

}  // namespace

void write_config_keys(GgufWriter& w, const ModelConfig& c) {
  const std::string& arch = c.arch;
  const std::string a = arch + ".";
  const ArchTraits& traits = arch_traits(arch);
  const KeyPolicy& p = policy_for(arch);

  // What GGUF cannot say must already be what the reader derives, or the model would change.
  const float default_scale = 1.f / std::sqrt(static_cast<float>(c.head_dim));
  const float have = c.attn_scale == 0.f ? default_scale : c.attn_scale;
  const float derived = derived_attn_scale(c) == 0.f ? default_scale : derived_attn_scale(c);
  if (std::fabs(have - derived) > 1e-6f * derived)
    throw InvalidArgument(fmt::format("convert: {} attention scale {} cannot be stored in GGUF (no key; readers "
                                      "derive {} for this model)",
                                      arch, have, derived));
  if (c.sliding_window > 0 && traits.swa == SwaLayers::None)
    throw InvalidArgument(fmt::format("convert: {} sliding window {} cannot be stored in GGUF (the family has none)",
                                      arch, c.sliding_window));

  w.set_u32(a + "block_count", u32(arch, "n_layer", c.n_layer));
  w.set_u32(a + "context_length", u32(arch, "n_ctx_train", c.n_ctx_train));
  w.set_u32(a + "embedding_length", u32(arch, "n_embd", c.n_embd));
  w.set_u32(a + "feed_forward_length", u32(arch, "n_ff", c.n_ff));
  w.set_u32(a + "attention.head_count", u32(arch, "n_head", c.n_head));
  if (p.head_count_kv || c.n_head_kv != c.n_head)
    w.set_u32(a + "attention.head_count_kv", u32(arch, "n_head_kv", c.n_head_kv));
  if (traits.rope && (p.rope_base || c.rope.freq_base != 10000.f)) w.set_f32(a + "rope.freq_base", c.rope.freq_base);
  w.set_f32(a + (traits.norm == NormKind::LayerNorm ? "attention.layer_norm_epsilon"
                                                    : "attention.layer_norm_rms_epsilon"),
            c.norm_eps);
  // The reader derives head_dim as n_embd / n_head when the key is absent.
  const bool derived_head_dim = c.n_head > 0 && c.n_embd % c.n_head == 0 && c.head_dim == c.n_embd / c.n_head;
  if (p.head_dim_keys || !derived_head_dim) {
    w.set_u32(a + "attention.key_length", u32(arch, "head_dim", c.head_dim));
    w.set_u32(a + "attention.value_length", u32(arch, "head_dim", c.head_dim));
  }
  if (p.vocab_size) w.set_u32(a + "vocab_size", u32(arch, "n_vocab", c.n_vocab));
  if (traits.rope && (p.rope_dims || c.rope.n_rot != c.head_dim))
    w.set_u32(a + "rope.dimension_count", u32(arch, "n_rot", c.rope.n_rot));
  if (p.original_ctx) w.set_u32(a + "rope.scaling.original_context_length", u32(arch, "n_ctx_train", c.n_ctx_train));
  if (traits.rope && c.rope.freq_scale != 1.f) {
    // Linear position scaling, as llama.cpp writes HF's rope_scaling {"type": "linear"}.
    w.set_string(a + "rope.scaling.type", "linear");
    w.set_f32(a + "rope.scaling.factor", 1.f / c.rope.freq_scale);
  }
  // (Llama 3.1 frequency factors are the rope_freqs.weight tensor, not a key.)
  if (c.sliding_window > 0) w.set_u32(a + "attention.sliding_window", u32(arch, "sliding_window", c.sliding_window));
  if (c.attn_softcap > 0.f) w.set_f32(a + "attn_logit_softcapping", c.attn_softcap);
  if (c.final_softcap > 0.f) w.set_f32(a + "final_logit_softcapping", c.final_softcap);
}

namespace detail {

void write_hf_config_extras(GgufWriter& w, const std::string& dir, const ModelConfig& c) {
  if (c.arch != "phi3") return;
  const std::string path = (std::filesystem::path(dir) / "config.json").string();
  std::ifstream in(path, std::ios::binary);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (!in.is_open() || j.is_discarded() || !j.is_object())
    throw FormatError(fmt::format("{}: cannot read the JSON object", path));
  const auto it = j.find("sliding_window");
  if (it == j.end() || it->is_null()) return;
  if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > int64_t{UINT32_MAX})
    throw FormatError(fmt::format("{}: field 'sliding_window' is {} (must be null or an integer in [1, {}])", path,
                                  it->dump(), UINT32_MAX));
  w.set_u32(c.arch + ".attention.sliding_window", static_cast<uint32_t>(it->get<int64_t>()));
}

}  // namespace detail
}  // namespace contrail
