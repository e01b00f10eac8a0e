// Hugging Face checkpoint directory -> ModelFile: config.json (transformers layout) becomes the
// ModelConfig, and the safetensors weights are renamed to the GGUF names of model_file.h and
// viewed in place. Q/K rows are not permuted: llama's rotary layout is declared as RopeMode::Neox
// instead (see model_file.h).
#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

#include "contrail/core/error.h"
#include "contrail/core/mapped_file.h"
#include "contrail/model/arch.h"
#include "contrail/model/model_file.h"
#include "contrail/model/safetensors.h"
#include "model/loader_detail.h"

namespace contrail {
namespace {

using nlohmann::json;

// Far above any real config.json / index (a few KB resp. a few hundred KB).
constexpr size_t kMaxJsonBytes = size_t(64) << 20;

json read_json_file(const std::string& path) {
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
  const json& at(const char* field) const {
    const json* v = find(field);
    if (!v) throw FormatError(fmt::format("{}: required field '{}' is missing", path_, field));
    return *v;
  }
  [[noreturn]] void wrong_type(const char* field, const json& v, const char* expected) const {
    throw FormatError(fmt::format("{}: field '{}' is {} ({}), expected {}", path_, field, v.dump(), v.type_name(),
                                  expected));
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

 private:
  const json& j_;
  std::string path_;
};

// Our architecture for config.json's "architectures"[0], else its "model_type".
std::string read_arch(const ConfigReader& r) {
  static const std::pair<const char*, const char*> kClasses[] = {
      {"LlamaForCausalLM", "llama"}, {"MistralForCausalLM", "llama"}, {"Qwen2ForCausalLM", "qwen2"}};
  static const std::pair<const char*, const char*> kModelTypes[] = {
      {"llama", "llama"}, {"mistral", "llama"}, {"qwen2", "qwen2"}};
  auto lookup = [&](const auto& table, const char* field, const std::string& value) {
    std::string names;
    for (const auto& [from, to] : table) {
      if (value == from) return std::string(to);
      names += (names.empty() ? "" : ", ") + std::string(from);
    }
    throw FormatError(fmt::format("{}: field '{}' is '{}', which is not supported (supported: {})", r.path(), field,
                                  value, names));
  };
  if (const json* a = r.find("architectures")) {
    if (!a->is_array() || a->empty() || !(*a)[0].is_string())
      r.wrong_type("architectures", *a, "a non-empty array of strings");
    if (a->size() != 1)
      throw FormatError(fmt::format("{}: field 'architectures' is {}, expected exactly one class", r.path(), a->dump()));
    return lookup(kClasses, "architectures", (*a)[0].get<std::string>());
  }
  if (r.find("model_type")) return lookup(kModelTypes, "model_type", r.get_string("model_type", ""));
  throw FormatError(fmt::format("{}: required field 'architectures' (or 'model_type') is missing", r.path()));
}

// rope_scaling: null, or {"type" | "rope_type": "linear", "factor": > 0}.
float read_rope_freq_scale(const ConfigReader& r) {
  const json* s = r.find("rope_scaling");
  if (!s) return 1.f;
  if (!s->is_object()) r.wrong_type("rope_scaling", *s, "null or an object");
  const auto type_it = s->contains("rope_type") ? s->find("rope_type") : s->find("type");
  if (type_it == s->end())
    throw FormatError(fmt::format("{}: field 'rope_scaling' is {}: it has no 'rope_type' (or 'type')", r.path(),
                                  s->dump()));
  if (!type_it->is_string() || type_it->get<std::string>() != "linear")
    throw FormatError(fmt::format("{}: field 'rope_scaling' has type {}, which is not supported yet (supported: "
                                  "\"linear\")",
                                  r.path(), type_it->dump()));
  const auto factor = s->find("factor");
  if (factor == s->end() || !factor->is_number() || !(factor->get<double>() > 0))
    throw FormatError(fmt::format("{}: field 'rope_scaling' is {}: 'factor' must be a positive number", r.path(),
                                  s->dump()));
  return static_cast<float>(1.0 / factor->get<double>());
}

ModelConfig read_config(const ConfigReader& r) {
  ModelConfig c;
  c.arch = read_arch(r);
  // Features of the transformers classes that the traits do not describe: reject rather than
  // silently ignore weights or change the activation.
  const std::string act = r.get_string("hidden_act", "silu");
  if (act != "silu")
    throw FormatError(fmt::format("{}: field 'hidden_act' is '{}', which is not supported (supported: silu)",
                                  r.path(), act));
  for (const char* field : {"attention_bias", "mlp_bias"})
    if (r.get_bool(field, false))
      throw FormatError(fmt::format("{}: field '{}' is true, which is not supported yet", r.path(), field));

  c.n_embd = r.get_int("hidden_size");
  c.n_ff = r.get_int("intermediate_size");
  c.n_layer = r.get_int("num_hidden_layers");
  c.n_head = r.get_int("num_attention_heads");
  c.n_head_kv = r.get_int("num_key_value_heads", c.n_head);
  if (r.find("head_dim")) {
    c.head_dim = r.get_int("head_dim");
  } else if (c.n_head > 0) {
    if (c.n_embd % c.n_head != 0)
      throw FormatError(fmt::format("{}: field 'hidden_size' {} is not a multiple of 'num_attention_heads' {} and "
                                    "'head_dim' is absent",
                                    r.path(), c.n_embd, c.n_head));
    c.head_dim = c.n_embd / c.n_head;
  }
  c.n_ctx_train = r.get_int("max_position_embeddings");
  c.n_vocab = r.get_int("vocab_size");
  c.norm_eps = static_cast<float>(r.get_float("rms_norm_eps"));
  c.rope.n_rot = c.head_dim;
  c.rope.freq_base = static_cast<float>(r.get_float("rope_theta", 10000.0));
  c.rope.freq_scale = read_rope_freq_scale(r);
  // HF q_proj/k_proj rows rotate halves for every supported family (GGUF llama differs: its
  // converter permutes the rows into pairs).
  c.rope.mode = ops::RopeMode::Neox;
  c.tied_embeddings = r.get_bool("tie_word_embeddings", false);
  c.validate(r.path());
  return c;
}

// HF name of a model_file.h weight name.
std::string hf_name(const std::string& ours) {
  static const std::pair<std::string_view, std::string_view> kTop[] = {
      {"token_embd.weight", "model.embed_tokens.weight"},
      {"output_norm.weight", "model.norm.weight"},
      {"output.weight", "lm_head.weight"}};
  static const std::pair<std::string_view, std::string_view> kLayer[] = {
      {"attn_norm.weight", "input_layernorm.weight"},   {"attn_q.weight", "self_attn.q_proj.weight"},
      {"attn_k.weight", "self_attn.k_proj.weight"},     {"attn_v.weight", "self_attn.v_proj.weight"},
      {"attn_q.bias", "self_attn.q_proj.bias"},         {"attn_k.bias", "self_attn.k_proj.bias"},
      {"attn_v.bias", "self_attn.v_proj.bias"},         {"attn_output.weight", "self_attn.o_proj.weight"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"}, {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"},          {"ffn_down.weight", "mlp.down_proj.weight"}};
  for (const auto& [from, to] : kTop)
    if (ours == from) return std::string(to);
  // "blk.{i}.<suffix>" -> "model.layers.{i}.<hf suffix>"
  const size_t dot = ours.find('.', 4);
  const std::string_view suffix = std::string_view(ours).substr(dot + 1);
  for (const auto& [from, to] : kLayer)
    if (suffix == from) return fmt::format("model.layers.{}.{}", ours.substr(4, dot - 4), to);
  throw Error(fmt::format("hf_name: no Hugging Face name for '{}'", ours));  // for_each_weight and this table disagree
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
  const json j = read_json_file(ipath);
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

// Non-weight buffers older transformers versions saved alongside the weights.
bool ignorable(std::string_view hf) {
  return hf.ends_with(".rotary_emb.inv_freq");
}

}  // namespace

ModelFile load_hf_model(const std::string& dir_str) {
  const std::filesystem::path dir(dir_str);
  const std::string cpath = (dir / "config.json").string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(cpath, ec))
    throw FormatError(fmt::format("{}: not a Hugging Face checkpoint directory: config.json is missing", dir_str));
  const json cj = read_json_file(cpath);
  ModelFile m;
  m.format = ModelFormat::HuggingFace;
  m.path = dir_str;
  m.config = read_config(ConfigReader(cj, cpath));
  const ModelConfig& c = m.config;
  const Shards shards = open_shards(dir);

  std::set<std::string, std::less<>> used;  // HF names taken, to find unexpected ones
  detail::for_each_weight(c, arch_traits(c.arch), [&](const detail::ExpectedWeight& e) {
    const std::string hf = hf_name(e.name);
    const auto it = shards.owner.find(hf);
    if (it == shards.owner.end())
      throw FormatError(fmt::format("{}: required tensor '{}' {} is missing ({} {} layers, {} tensors in the "
                                    "checkpoint)",
                                    dir_str, hf, detail::shape_str(e.shape), c.n_layer, c.arch, shards.owner.size()));
    const SafetensorsFile::TensorInfo& t = *it->second->find(hf);
    if (!t.dtype || !detail::supported_matrix_dtype(*t.dtype) || (e.f32_kind && *t.dtype != DType::F32))
      throw FormatError(fmt::format("{}: tensor '{}' has dtype {}, but {} must be {}", it->second->path(), hf,
                                    t.st_dtype, e.f32_kind ? e.f32_kind : "weight matrices",
                                    e.f32_kind ? "F32" : "F32, F16 or BF16"));
    if (t.shape != e.shape)
      throw FormatError(fmt::format(
          "{}: tensor '{}' has shape {}, expected {} (vocab_size {}, hidden_size {}, num_attention_heads {}, "
          "num_key_value_heads {}, head_dim {}, intermediate_size {})",
          it->second->path(), hf, detail::shape_str(t.shape), detail::shape_str(e.shape), c.n_vocab, c.n_embd,
          c.n_head, c.n_head_kv, c.head_dim, c.n_ff));
    m.tensors.emplace(e.name, it->second->tensor(hf));
    used.insert(hf);
  });
  // Anything else is a weight the architecture does not use (attention_bias without the config
  // flag, an unknown family's extras): ignoring it would give wrong results. A tied checkpoint may
  // still carry lm_head (transformers overwrites it with the embedding).
  for (const auto& [hf, file] : shards.owner)
    if (!used.count(hf) && !ignorable(hf) && !(c.tied_embeddings && hf == "lm_head.weight"))
      throw FormatError(fmt::format("{}: unexpected tensor '{}': not used by the supported {} architecture",
                                    file->path(), hf, c.arch));

  for (const auto& [key, value] : cj.items()) m.metadata.emplace_back("config." + key, value.dump());
  // The tokenizer (tokenizer.json / tokenizer.model) is not read yet: m.vocab stays empty.
  return m;
}

}  // namespace contrail
