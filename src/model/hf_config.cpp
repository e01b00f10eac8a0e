// config.json (transformers layout) -> ModelConfig, for the classes load_hf_model supports.
// Fields are read with transformers' semantics (defaults, null handling, which class honours which
// key); anything the engine does not implement is rejected rather than ignored.
#include <fmt/format.h>

#include <cmath>
#include <memory>
#include <string_view>
#include <vector>

#include "contrail/core/error.h"
#include "contrail/core/mapped_file.h"
#include "contrail/model/arch.h"
#include "model/hf_model.h"
#include "model/loader_detail.h"

namespace contrail::detail {
namespace {

using nlohmann::json;

// Far above any real config.json / index (a few KB resp. a few hundred KB).
constexpr size_t kMaxJsonBytes = size_t(64) << 20;

// Typed, validated access to config.json fields; every error names the file, the field and the value.
class ConfigReader {
 public:
  ConfigReader(const json& j, std::string path) : j_(j), path_(std::move(path)) {}
  const std::string& path() const { return path_; }

  // Present and not null.
  const json* find(const char* field) const {
    const auto it = j_.find(field);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  bool present(const char* field) const { return j_.contains(field); }  // null counts as present
  const json& at(const char* field) const {
    const json* v = find(field);
    if (!v) throw FormatError(fmt::format("{}: required field '{}' is missing", path_, field));
    return *v;
  }
  [[noreturn]] void wrong_type(const char* field, const json& v, const char* expected) const {
    throw FormatError(fmt::format("{}: field '{}' is {} ({}), expected {}", path_, field, v.dump(), v.type_name(),
                                  expected));
  }
  [[noreturn]] void unsupported(const char* field, const json& v, const std::string& supported) const {
    throw FormatError(
        fmt::format("{}: field '{}' is {}, which is not supported (supported: {})", path_, field, v.dump(), supported));
  }

  int64_t get_int(const char* field) const { return as_int(field, at(field)); }
  int64_t get_int(const char* field, int64_t fallback) const {
    const json* v = find(field);
    return v ? as_int(field, *v) : fallback;
  }
  double get_float(const char* field) const { return as_float(field, at(field)); }
  double get_float(const char* field, double fallback) const {
    const json* v = find(field);
    return v ? as_float(field, *v) : fallback;
  }
  // A number that must be positive and finite.
  double get_positive(const char* field) const { return positive(field, at(field)); }
  bool get_bool(const char* field, bool fallback) const {
    const json* v = find(field);
    if (!v) return fallback;
    if (!v->is_boolean()) wrong_type(field, *v, "a boolean");
    return v->get<bool>();
  }
  std::string get_string(const char* field, const std::string& fallback) const {
    const json* v = find(field);
    if (!v) return fallback;
    if (!v->is_string()) wrong_type(field, *v, "a string");
    return v->get<std::string>();
  }

  int64_t as_int(const char* field, const json& v) const {
    if (v.is_number_unsigned()) {
      if (v.get<uint64_t>() > uint64_t(INT64_MAX)) wrong_type(field, v, "an integer within int64");
      return static_cast<int64_t>(v.get<uint64_t>());
    }
    if (!v.is_number_integer()) wrong_type(field, v, "an integer");
    return v.get<int64_t>();
  }
  double as_float(const char* field, const json& v) const {
    if (!v.is_number()) wrong_type(field, v, "a number");
    return v.get<double>();
  }
  double positive(const char* field, const json& v) const {
    const double d = as_float(field, v);
    if (!(d > 0) || !std::isfinite(d))
      throw FormatError(fmt::format("{}: field '{}' is {}, expected a positive number", path_, field, v.dump()));
    return d;
  }

 private:
  const json& j_;
  std::string path_;
};

// The transformers classes we load. Keys and defaults differ per class even where the graph is
// shared (MistralForCausalLM honours sliding_window, LlamaForCausalLM does not).
enum class HfClass { Llama, Mistral, Qwen2, Gemma, Gemma2, Phi3, Gpt2 };

struct ClassInfo {
  const char* cls;         // "architectures"[0]
  const char* model_type;  // "model_type", used when "architectures" is absent
  const char* arch;        // ours
  HfClass id;
};

constexpr ClassInfo kClasses[] = {
    {"LlamaForCausalLM", "llama", "llama", HfClass::Llama},
    {"MistralForCausalLM", "mistral", "llama", HfClass::Mistral},
    {"Qwen2ForCausalLM", "qwen2", "qwen2", HfClass::Qwen2},
    {"GemmaForCausalLM", "gemma", "gemma", HfClass::Gemma},
    {"Gemma2ForCausalLM", "gemma2", "gemma2", HfClass::Gemma2},
    {"Phi3ForCausalLM", "phi3", "phi3", HfClass::Phi3},
    {"GPT2LMHeadModel", "gpt2", "gpt2", HfClass::Gpt2},
};

const ClassInfo& read_class(const ConfigReader& r) {
  auto lookup = [&](const char* field, const std::string& value, bool by_class) -> const ClassInfo& {
    std::string names;
    for (const ClassInfo& c : kClasses) {
      const char* key = by_class ? c.cls : c.model_type;
      if (value == key) return c;
      names += (names.empty() ? "" : ", ") + std::string(key);
    }
    throw FormatError(fmt::format("{}: field '{}' is '{}', which is not supported (supported: {})", r.path(), field,
                                  value, names));
  };
  if (const json* a = r.find("architectures")) {
    if (!a->is_array() || a->empty() || !(*a)[0].is_string())
      r.wrong_type("architectures", *a, "a non-empty array of strings");
    if (a->size() != 1)
      throw FormatError(fmt::format("{}: field 'architectures' is {}, expected exactly one class", r.path(), a->dump()));
    return lookup("architectures", (*a)[0].get<std::string>(), true);
  }
  if (r.find("model_type")) return lookup("model_type", r.get_string("model_type", ""), false);
  throw FormatError(fmt::format("{}: required field 'architectures' (or 'model_type') is missing", r.path()));
}

// The activation key of the class must name the function the family's FfnKind computes.
void check_activation(const ConfigReader& r, HfClass cls) {
  struct Activation {
    const char* field;
    const char* fallback;
    std::vector<std::string_view> accepted;
  };
  static const Activation kSilu{"hidden_act", "silu", {"silu"}};
  // transformers' Gemma classes read hidden_activation (null -> gelu_pytorch_tanh) and ignore the
  // legacy hidden_act.
  static const Activation kGemma{"hidden_activation", "gelu_pytorch_tanh", {"gelu_pytorch_tanh", "gelu_new"}};
  static const Activation kGpt2{"activation_function", "gelu_new", {"gelu_new", "gelu_pytorch_tanh"}};
  const Activation& a = cls == HfClass::Gemma || cls == HfClass::Gemma2 ? kGemma : cls == HfClass::Gpt2 ? kGpt2 : kSilu;
  const std::string act = r.get_string(a.field, a.fallback);
  std::string names;
  for (std::string_view name : a.accepted) {
    if (act == name) return;
    names += (names.empty() ? "" : ", ") + std::string(name);
  }
  throw FormatError(fmt::format("{}: field '{}' is '{}', which is not supported (supported: {})", r.path(), a.field,
                                act, names));
}

// rope_scaling {"rope_type": "llama3", ...}: the inputs of llama3_rope_freq_factors.
struct Llama3Scaling {
  double factor = 0, low = 0, high = 0, original = 0;
};

// rope_scaling: null, {"rope_type" | "type": "default" | "linear" | "llama3", ...}. Sets
// freq_scale, or rope_freq_factors and `llama3`.
void read_rope_scaling(const ConfigReader& r, ModelConfig& c, Llama3Scaling& llama3) {
  const json* s = r.find("rope_scaling");
  if (!s) return;
  if (!s->is_object()) r.wrong_type("rope_scaling", *s, "null or an object");
  const auto type_it = s->contains("rope_type") ? s->find("rope_type") : s->find("type");
  if (type_it == s->end())
    throw FormatError(fmt::format("{}: field 'rope_scaling' is {}: it has no 'rope_type' (or 'type')", r.path(),
                                  s->dump()));
  const std::string type = type_it->is_string() ? type_it->get<std::string>() : "";
  if (type == "default") return;
  if (type != "linear" && type != "llama3")
    r.unsupported("rope_scaling", *s, "null, rope_type \"default\", \"linear\" or \"llama3\"");
  // Every number rope_scaling needs: present, positive, finite.
  const ConfigReader sub(*s, r.path() + ": field 'rope_scaling'");
  const double factor = sub.get_positive("factor");
  if (type == "linear") {
    c.rope.freq_scale = static_cast<float>(1.0 / factor);
    return;
  }
  llama3.factor = factor;
  llama3.low = sub.get_positive("low_freq_factor");
  llama3.high = sub.get_positive("high_freq_factor");
  llama3.original = sub.get_positive("original_max_position_embeddings");
  if (!(llama3.high > llama3.low))
    throw FormatError(fmt::format("{}: field 'rope_scaling' is {}: high_freq_factor {} must exceed low_freq_factor {}",
                                  r.path(), s->dump(), llama3.high, llama3.low));
  c.rope_freq_factors = true;
}

// The sliding window of a class that honours one: null = none, else >= 1.
int64_t read_window(const ConfigReader& r, bool required) {
  if (required && !r.find("sliding_window")) r.at("sliding_window");  // throws "missing"
  const int64_t w = r.get_int("sliding_window", 0);
  if (r.find("sliding_window") && w < 1)
    throw FormatError(fmt::format("{}: field 'sliding_window' is {} (must be null or >= 1)", r.path(), w));
  return w;
}

// A soft-capping value of Gemma 2: the key must be present; null = off.
float read_softcap(const ConfigReader& r, const char* field) {
  if (!r.present(field)) r.at(field);  // throws "missing"
  const json* v = r.find(field);
  return v ? static_cast<float>(r.positive(field, *v)) : 0.f;
}

}  // namespace

json read_json_object_file(const std::string& path) {
  const std::shared_ptr<MappedFile> f = MappedFile::open(path);
  if (f->size() > kMaxJsonBytes)
    throw FormatError(fmt::format("{}: {} bytes, more than the {} allowed for a JSON file", path, f->size(),
                                  kMaxJsonBytes));
  const char* begin = reinterpret_cast<const char*>(f->data());
  json j = json::parse(begin, begin + f->size(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw FormatError(fmt::format("{}: not valid JSON", path));
  if (!j.is_object()) throw FormatError(fmt::format("{}: the top level is a {}, expected an object", path, j.type_name()));
  return j;
}

HfConfig read_hf_config(const json& j, const std::string& path) {
  const ConfigReader r(j, path);
  const ClassInfo& cls = read_class(r);
  HfConfig out;
  ModelConfig& c = out.config;
  c.arch = cls.arch;
  const bool gpt2 = cls.id == HfClass::Gpt2, gemma = cls.id == HfClass::Gemma || cls.id == HfClass::Gemma2;
  out.layout = gpt2 ? HfLayout::Gpt2 : HfLayout::Llama;
  check_activation(r, cls.id);
  // Biases the traits do not describe would be weights we silently drop.
  if (cls.id != HfClass::Qwen2 && !gpt2)
    for (const char* field : {"attention_bias", "mlp_bias"})
      if (r.get_bool(field, false))
        throw FormatError(fmt::format("{}: field '{}' is true, which is not supported yet", path, field));

  if (gpt2) {
    // GPT2Config's own names; n_inner null means 4 * n_embd.
    c.n_embd = r.get_int("n_embd");
    c.n_layer = r.get_int("n_layer");
    c.n_head = r.get_int("n_head");
    c.n_head_kv = c.n_head;
    c.n_ff = r.get_int("n_inner", 4 * c.n_embd);
    c.n_ctx_train = r.get_int("n_positions");
    c.norm_eps = static_cast<float>(r.get_float("layer_norm_epsilon"));
    if (!r.get_bool("scale_attn_weights", true))
      throw FormatError(fmt::format("{}: field 'scale_attn_weights' is false, which is not supported", path));
    for (const char* field : {"scale_attn_by_inverse_layer_idx", "add_cross_attention"})
      if (r.get_bool(field, false))
        throw FormatError(fmt::format("{}: field '{}' is true, which is not supported", path, field));
  } else {
    c.n_embd = r.get_int("hidden_size");
    c.n_ff = r.get_int("intermediate_size");
    c.n_layer = r.get_int("num_hidden_layers");
    c.n_head = r.get_int("num_attention_heads");
    c.n_head_kv = r.get_int("num_key_value_heads", c.n_head);
    c.n_ctx_train = r.get_int("max_position_embeddings");
    c.norm_eps = static_cast<float>(r.get_float("rms_norm_eps"));
  }
  if (gemma) {
    c.head_dim = r.get_int("head_dim");  // Gemma's head_dim is independent of hidden_size / heads
  } else if (r.find("head_dim")) {
    c.head_dim = r.get_int("head_dim");
  } else if (c.n_head > 0) {
    const char* hidden = gpt2 ? "n_embd" : "hidden_size";
    const char* heads = gpt2 ? "n_head" : "num_attention_heads";
    if (c.n_embd % c.n_head != 0)
      throw FormatError(fmt::format("{}: field '{}' {} is not a multiple of '{}' {} and 'head_dim' is absent", path,
                                    hidden, c.n_embd, heads, c.n_head));
    c.head_dim = c.n_embd / c.n_head;
  }
  c.n_vocab = r.get_int("vocab_size");
  c.tied_embeddings = r.get_bool("tie_word_embeddings", gemma || gpt2);

  // Rotary embedding (HF q/k rows rotate halves in every supported family; GGUF llama differs:
  // its converter permutes the rows into pairs). GPT-2 has none; its n_rot only has to be valid.
  c.rope.n_rot = c.head_dim;
  c.rope.mode = ops::RopeMode::Neox;
  Llama3Scaling llama3;
  if (!gpt2) {
    c.rope.freq_base = static_cast<float>(r.get_float("rope_theta", 10000.0));
    if (cls.id == HfClass::Phi3 && r.find("partial_rotary_factor")) {
      const double f = r.get_float("partial_rotary_factor");
      if (!(f > 0 && f <= 1))
        throw FormatError(fmt::format("{}: field 'partial_rotary_factor' is {} (must be in (0, 1])", path, f));
      c.rope.n_rot = static_cast<int64_t>(static_cast<double>(c.head_dim) * f);
    }
    read_rope_scaling(r, c, llama3);
  }

  switch (cls.id) {
    case HfClass::Mistral:
      c.sliding_window = read_window(r, false);
      break;
    case HfClass::Qwen2:
      if (r.get_bool("use_sliding_window", false))
        throw FormatError(fmt::format("{}: field 'use_sliding_window' is true, which is not supported yet", path));
      break;
    case HfClass::Gemma2:
      c.sliding_window = read_window(r, true);
      c.attn_scale = static_cast<float>(1.0 / std::sqrt(r.get_positive("query_pre_attn_scalar")));
      c.attn_softcap = read_softcap(r, "attn_logit_softcapping");
      c.final_softcap = read_softcap(r, "final_logit_softcapping");
      break;
    default:  // Llama: LlamaConfig has no window; Phi-3: disabled, see arch.cpp.
      break;
  }
  c.validate(path);  // before n_rot sizes anything
  if (c.rope_freq_factors)
    out.rope_freq_factors = llama3_rope_freq_factors(c.rope.n_rot, c.rope.freq_base, llama3.factor, llama3.low,
                                                     llama3.high, llama3.original);
  return out;
}

std::vector<float> llama3_rope_freq_factors(int64_t n_rot, double theta, double factor, double low_freq_factor,
                                            double high_freq_factor, double original_ctx) {
  // f32 throughout like the converter's torch code: freqs = 1 / theta^(arange(0, n_rot, 2) / n_rot).
  const float low_wavelen = static_cast<float>(original_ctx / low_freq_factor);
  const float high_wavelen = static_cast<float>(original_ctx / high_freq_factor);
  const float pi2 = static_cast<float>(2.0 * 3.14159265358979323846);
  std::vector<float> out(static_cast<size_t>(n_rot / 2));  // (n_rot / 2)
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const float e = static_cast<float>(2 * i) / static_cast<float>(n_rot);
    const float freq = 1.0f / std::pow(static_cast<float>(theta), e);
    const float wavelen = pi2 / freq;
    float f;
    if (wavelen < high_wavelen) {
      f = 1.0f;
    } else if (wavelen > low_wavelen) {
      f = static_cast<float>(factor);
    } else {
      const float smooth = (static_cast<float>(original_ctx) / wavelen - static_cast<float>(low_freq_factor)) /
                           static_cast<float>(high_freq_factor - low_freq_factor);
      f = 1.0f / ((1.0f - smooth) / static_cast<float>(factor) + smooth);
    }
    out[static_cast<size_t>(i)] = f;
  }
  return out;
}

}  // namespace contrail::detail
