// tokenizer.* keys of a VocabData: the inverse of gguf_vocab.cpp's read_gguf_vocab, with the key
// names and value types llama.cpp's converter (gguf-py SpecialVocab / GGUFWriter) uses, and for
// Hugging Face sources the key set gguf-py's SpecialVocab derives from the directory's files.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "contrail/core/error.h"
#include "contrail/model/convert.h"
#include "contrail/tokenizer/hf_tokenizer.h"
#include "tokenizer/pre_tokenizer_patterns.h"

namespace contrail {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The first name of each group of llama.cpp's pre-tokenizer table (src/tokenizer/
// pre_tokenizer_patterns.cpp), most common first: the name a byte-level BPE vocabulary gets when
// its split regexes (and ignore_merges) equal that entry's.
constexpr std::string_view kPreCandidates[] = {
    "gpt-2", "llama-bpe", "qwen2", "dbrx", "gpt-4o", "tekken", "qwen35", "deepseek-llm", "deepseek-coder",
    "deepseek-v3", "falcon", "starcoder", "command-r", "stablelm2", "trillion", "bloom", "poro-chat", "viking"};

// One spelling for equivalent split regexes: HF tokenizer.json writes the contraction
// alternatives as a case-insensitive group where llama.cpp's copies spell the cases out, and
// HF's GPT-2 regex ends "\s+(?!\S)|\s+" where llama.cpp's stops after "\s+(?!\S)" (the text
// between matches becomes a piece of its own, which is what the last "\s+" matches).
std::string canonical_pattern(std::string p) {
  static const std::string hf = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";
  static const std::string ours = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
  for (size_t at = p.find(hf); at != std::string::npos; at = p.find(hf, at + ours.size())) p.replace(at, hf.size(), ours);
  static const std::string tail = "\\s+(?!\\S)|\\s+";
  if (p.ends_with(tail)) p.resize(p.size() - 4);  // drop "|\s+"
  return p;
}

std::string infer_pre(const VocabData& v, const std::string& source) {
  const auto canonical = [](const std::vector<std::string>& ps) {
    std::vector<std::string> out;
    for (const std::string& p : ps) out.push_back(canonical_pattern(p));
    return out;
  };
  const std::vector<std::string> patterns = canonical(v.pre_patterns);
  for (std::string_view name : kPreCandidates) {
    const detail::PreTokenizerSpec* spec = detail::find_pre_tokenizer(name);
    if (spec && canonical(spec->patterns) == patterns && spec->ignore_merges == v.ignore_merges)
      return std::string(name);
  }
  throw InvalidArgument(fmt::format("{}: the byte-level BPE vocabulary has no pre-tokenizer name (tokenizer.ggml.pre) "
                                    "and its {} split regex(es) match none llama.cpp knows ({}); llama.cpp could not "
                                    "tokenize with the converted file",
                                    source, v.pre_patterns.size(), detail::known_pre_tokenizer_names()));
}

// What read_gguf_vocab assumes when a key is absent (llama.cpp's defaults per tokenizer model).
struct ReaderDefaults {
  int32_t bos = -1, eos = -1, unk = -1;
  bool add_bos = false, add_space_prefix = false;
};
ReaderDefaults reader_defaults(const std::string& model, const std::string& pre, size_t n) {
  ReaderDefaults d;
  const auto in_range = [n](int32_t id) { return static_cast<size_t>(id) < n ? id : -1; };
  if (model == "llama") {
    d.bos = in_range(1), d.eos = in_range(2), d.unk = in_range(0);
    d.add_bos = d.add_space_prefix = true;
  } else {
    d.bos = d.eos = in_range(11);
    const detail::PreTokenizerSpec* spec = detail::find_pre_tokenizer(pre);
    d.add_bos = spec && spec->add_bos;
  }
  return d;
}

std::optional<json> read_json_file(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) return std::nullopt;
  std::ifstream in(p, std::ios::binary);
  if (!in) throw FormatError(fmt::format("{}: cannot open", p.string()));
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded()) throw FormatError(fmt::format("{}: not valid JSON", p.string()));
  return j;
}

// Python truthiness of a JSON value.
bool truthy(const json* j) {
  if (!j || j->is_null()) return false;
  if (j->is_boolean()) return j->get<bool>();
  if (j->is_number()) return j->get<double>() != 0;
  if (j->is_string() || j->is_array() || j->is_object()) return !j->empty();
  return true;
}
const json* field(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}
// tmpl[i].SpecialToken.id, or null.
json special_id(const json& tmpl, size_t i) {
  if (!tmpl.is_array() || i >= tmpl.size()) return nullptr;
  const json* st = field(tmpl[i], "SpecialToken");
  const json* id = st ? field(*st, "id") : nullptr;
  return id ? *id : json(nullptr);
}
json sequence_id(const json& tmpl, size_t i) {
  const json* st = i < tmpl.size() ? field(tmpl[i], "Sequence") : nullptr;
  const json* id = st ? field(*st, "id") : nullptr;
  return id ? *id : json(nullptr);
}

// gguf-py SpecialVocab._try_load_from_tokenizer_json / _try_load_from_config_json.
class SpecialVocab {
 public:
  SpecialVocab(const fs::path& dir, size_t n_vocab) : n_vocab_(n_vocab) {
    const std::optional<json> tok = read_json_file(dir / "tokenizer.json");
    std::optional<json> tc = read_json_file(dir / "tokenizer_config.json");
    json added = json::array();
    if (tok) {
      if (const json* a = field(*tok, "added_tokens"); a && a->is_array()) added = *a;
      post_processor(*tok, tc);
    }
    if (tc && truthy(&*tc)) {
      for (const std::string& typ : types_) {
        const std::string add_key = "add_" + typ + "_token";
        if (const json* e = field(*tc, add_key.c_str()); e && e->is_boolean()) set_add(typ, e->get<bool>());
        const json* entry = field(*tc, (typ + "_token").c_str());
        const json* content = entry && entry->is_object() ? field(*entry, "content") : entry;
        if (!content || !content->is_string()) continue;
        for (const json& at : added) {
          const json* c = field(at, "content");
          if (c && *c == *content) {
            if (const json* id = field(at, "id")) set_id(typ, *id);
            break;
          }
        }
      }
    }
    if (const std::optional<json> cfg = read_json_file(dir / "config.json"))
      for (const std::string& typ : types_)
        if (const json* id = field(*cfg, (typ + "_token_id").c_str())) set_id(typ, *id);
  }

  HfTokenizerKeys keys() const {
    static const std::pair<std::string_view, std::string_view> id_keys[] = {
        {"bos", "tokenizer.ggml.bos_token_id"},   {"eos", "tokenizer.ggml.eos_token_id"},
        {"unk", "tokenizer.ggml.unknown_token_id"}, {"sep", "tokenizer.ggml.seperator_token_id"},
        {"pad", "tokenizer.ggml.padding_token_id"}, {"cls", "tokenizer.ggml.cls_token_id"},
        {"mask", "tokenizer.ggml.mask_token_id"},  {"eot", "tokenizer.ggml.eot_token_id"},
        {"eom", "tokenizer.ggml.eom_token_id"}};
    HfTokenizerKeys k;
    for (const auto& [typ, id] : ids_)
      for (const auto& [t, key] : id_keys)
        if (t == typ) k.ids.emplace_back(std::string(key), id);
    // GGUFWriter has add_add_{bos,eos,sep}_token only; gguf-py skips the others.
    for (const auto& [typ, on] : add_)
      if (typ == "bos" || typ == "eos" || typ == "sep") k.flags.emplace_back("tokenizer.ggml.add_" + typ + "_token", on);
    return k;
  }

 private:
  void set_id(const std::string& typ, const json& id) {
    if (!id.is_number_integer()) return;  // gguf-py: isinstance(tid, int)
    const int64_t v = id.get<int64_t>();
    if (v < 0 || static_cast<uint64_t>(v) >= n_vocab_) return;  // out of range: skipped with a warning
    for (const auto& [t, existing] : ids_)
      if (t == typ) return;  // first one wins
    ids_.emplace_back(typ, static_cast<uint32_t>(v));
  }
  void set_add(const std::string& typ, bool on) {
    for (auto& [t, v] : add_)
      if (t == typ) {
        v = on;
        return;
      }
    add_.emplace_back(typ, on);
  }

  // Crude parsing of the post-processor, as gguf-py does it (only simple templates).
  void post_processor(const json& tok, std::optional<json>& tc) {
    json special_bos = tc && field(*tc, "bos_token") ? (*tc)["bos_token"] : json(nullptr);
    json special_cls = tc && field(*tc, "cls_token") ? (*tc)["cls_token"] : json(nullptr);
    json special_eos = tc && field(*tc, "eos_token") ? (*tc)["eos_token"] : json(nullptr);
    json special_sep = tc && field(*tc, "sep_token") ? (*tc)["sep_token"] : json(nullptr);
    const bool have_tc = tc && truthy(&*tc);
    if (!truthy(&special_bos) && truthy(&special_cls) && have_tc) (*tc)["bos_token"] = special_bos = special_cls;
    if (!truthy(&special_eos) && truthy(&special_sep) && have_tc) (*tc)["eos_token"] = special_eos = special_sep;
    const json* pp = field(tok, "post_processor");
    if (!truthy(pp)) return;
    json processors = json::array({*pp});
    if (const json* list = field(*pp, "processors"); list && list->is_array()) processors = *list;
    for (const json& proc : processors) {
      const json* type = field(proc, "type");
      if (type && *type == "RobertaProcessing") {
        set_add("bos", true), set_add("eos", true), set_add("sep", true);
        if (!truthy(&special_cls) && have_tc) {
          const json* c = field(proc, "cls");
          (*tc)["cls_token"] = special_cls = c && c->is_array() && !c->empty() ? (*c)[0] : special_bos;
        }
        if (!truthy(&special_sep) && have_tc) {
          const json* s = field(proc, "sep");
          (*tc)["sep_token"] = special_sep = s && s->is_array() && !s->empty() ? (*s)[0] : special_eos;
        }
        continue;
      }
      if (!type || *type != "TemplateProcessing") continue;
      const json* single_p = field(proc, "single");
      const json* pair_p = field(proc, "pair");
      const json single = single_p && single_p->is_array() ? *single_p : json::array();
      json pair = pair_p && pair_p->is_array() ? *pair_p : json::array();
      json first = nullptr, last = nullptr;
      if (single.size() > 1) {
        first = special_id(single, 0);
        if (truthy(&first)) {
          if (!have_tc) special_bos = first;
          set_add("bos", first == special_bos || first == special_cls);
        }
        last = special_id(single, single.size() - 1);
        if (truthy(&last)) {
          if (!have_tc) {
            special_eos = last;
          } else if (last != special_eos) {
            // gguf-py keeps the configured EOS as EOT (or EOM) and takes the template's as EOS.
            const std::string alt = std::find(types_.begin(), types_.end(), "eot") == types_.end() ? "eot" : "eom";
            if (std::find(types_.begin(), types_.end(), alt) == types_.end()) {
              types_.push_back(alt);
              (*tc)[alt + "_token"] = special_eos;
            }
            (*tc)["eos_token"] = special_eos = last;
          }
          set_add("eos", last == special_eos);
        }
      }
      if (pair.empty()) continue;
      const size_t start = truthy(&first) && special_id(pair, 0) == first ? 1 : 0;
      const bool drop_last = truthy(&last) && special_id(pair, pair.size() - 1) == last;
      const size_t stop = pair.size() - (drop_last ? 1 : 0);
      if (start >= stop) continue;
      pair = json(std::vector<json>(pair.begin() + static_cast<std::ptrdiff_t>(start),
                                    pair.begin() + static_cast<std::ptrdiff_t>(stop)));
      if (sequence_id(pair, 0) != "A" || sequence_id(pair, pair.size() - 1) != "B" || pair.size() <= 2) continue;
      // A [sep] [eos] B
      bool add_sep = false;
      const json e1 = special_id(pair, 1);
      if (truthy(&e1) && (e1 == special_sep || e1 == special_eos) && !truthy(&last)) add_sep = true;
      if (pair.size() == 4) {
        const json e2 = special_id(pair, 2);
        if (truthy(&e2) && (e2 == special_sep || e2 == special_eos)) add_sep = true;
      }
      set_add("sep", add_sep);
      if (add_sep && !truthy(&special_sep) && have_tc) (*tc)["sep_token"] = special_eos;
    }
  }

  size_t n_vocab_;
  std::vector<std::string> types_ = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};
  std::vector<std::pair<std::string, uint32_t>> ids_;
  std::vector<std::pair<std::string, bool>> add_;
};

}  // namespace

HfTokenizerKeys hf_tokenizer_keys(const std::string& dir, const std::string& arch, size_t n_vocab) {
  HfTokenizerKeys k = SpecialVocab(dir, n_vocab).keys();
  if (arch == "gemma" || arch == "gemma2") {
    k.flags.emplace_back("tokenizer.ggml.add_space_prefix", false);  // GemmaModel / Gemma2Model.set_vocab
  } else if (arch == "llama") {
    // LlamaModel.set_vocab: tokenizer_config.json's add_prefix_space, when present.
    if (const std::optional<json> tc = read_json_file(fs::path(dir) / "tokenizer_config.json"))
      if (const json* a = field(*tc, "add_prefix_space"); a && a->is_boolean())
        k.flags.emplace_back("tokenizer.ggml.add_space_prefix", a->get<bool>());
  }
  return k;
}

VocabData load_hf_vocab_for_gguf(const std::string& dir, const std::string& arch) {
  const fs::path d(dir);
  std::error_code ec;
  if (arch == "gpt2" || !fs::is_regular_file(d / "tokenizer.model", ec) || !fs::exists(d / "tokenizer.json", ec))
    return load_hf_tokenizer(dir);
  // Both files: read the directory without tokenizer.json, through a view of symbolic links (the
  // tokenizer loader has no switch for the preference), and name the real directory in errors.
  std::random_device rd;
  const fs::path view = fs::temp_directory_path() / fmt::format("contrail-convert-vocab.{}.{:08x}", ::getpid(), rd());
  fs::create_directory(view);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code e;
      fs::remove_all(p, e);
    }
  } cleanup{view};
  for (const fs::directory_entry& e : fs::directory_iterator(d))
    if (e.path().filename() != "tokenizer.json") fs::create_symlink(fs::absolute(e.path()), view / e.path().filename());
  try {
    return load_hf_tokenizer(view.string());
  } catch (const FormatError& e) {
    std::string msg = e.what();
    for (size_t at = msg.find(view.string()); at != std::string::npos; at = msg.find(view.string(), at + dir.size()))
      msg.replace(at, view.string().size(), dir);
    throw FormatError(msg);
  }
}

void write_tokenizer_keys(GgufWriter& w, const VocabData& v, const std::string& source, const HfTokenizerKeys* hf) {
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
  // llama.cpp's SentencePiece path writes "default"; a byte-level BPE vocabulary is only usable
  // with the pre-tokenizer that llama.cpp recognises by name.
  const std::string pre = !v.pre.empty() ? v.pre : v.kind == VocabKind::SentencePiece ? "default" : infer_pre(v, source);
  w.set_string("tokenizer.ggml.model", model);
  w.set_string("tokenizer.ggml.pre", pre);
  w.set_string_array("tokenizer.ggml.tokens", v.tokens);
  if (!v.scores.empty()) w.set_f32_array("tokenizer.ggml.scores", v.scores);
  std::vector<int32_t> types(v.types.size());  // (n_vocab) TokenType values
  for (size_t i = 0; i < types.size(); ++i) types[i] = static_cast<int32_t>(v.types[i]);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  if (!v.merges.empty()) w.set_string_array("tokenizer.ggml.merges", v.merges);

  const ReaderDefaults def = reader_defaults(model, pre, v.tokens.size());
  const std::pair<const char*, int32_t> ids[] = {{"tokenizer.ggml.bos_token_id", v.bos_id},
                                                 {"tokenizer.ggml.eos_token_id", v.eos_id},
                                                 {"tokenizer.ggml.unknown_token_id", v.unk_id},
                                                 {"tokenizer.ggml.padding_token_id", v.pad_id},
                                                 {"tokenizer.ggml.eot_token_id", v.eot_id}};
  const int32_t id_defaults[] = {def.bos, def.eos, def.unk, -1, -1};
  const std::pair<const char*, bool> flags[] = {{"tokenizer.ggml.add_bos_token", v.add_bos},
                                                {"tokenizer.ggml.add_eos_token", v.add_eos},
                                                {"tokenizer.ggml.add_space_prefix", v.add_space_prefix}};
  const bool flag_defaults[] = {def.add_bos, false, def.add_space_prefix};
  if (!hf) {
    // Special ids: written whenever set (u32, as gguf-py writes them), so no reader has to know
    // llama.cpp's per-model defaults; add_space_prefix only where it differs from the default.
    for (const auto& [key, id] : ids)
      if (id >= 0) w.set_u32(key, static_cast<uint32_t>(id));
    w.set_bool(flags[0].first, flags[0].second);
    w.set_bool(flags[1].first, flags[1].second);
    if (flags[2].second != flag_defaults[2]) w.set_bool(flags[2].first, flags[2].second);
  } else {
    // llama.cpp's key set, then whatever of v would otherwise read back differently.
    for (const auto& [key, id] : hf->ids) w.set_u32(key, id);
    for (const auto& [key, on] : hf->flags) w.set_bool(key, on);
    const auto written = [&](std::string_view key) {
      for (const auto& kv : hf->ids)
        if (kv.first == key) return true;
      for (const auto& kv : hf->flags)
        if (kv.first == key) return true;
      return false;
    };
    for (size_t i = 0; i < std::size(ids); ++i)
      if (!written(ids[i].first) && ids[i].second != id_defaults[i] && ids[i].second >= 0)
        w.set_u32(ids[i].first, static_cast<uint32_t>(ids[i].second));
    for (size_t i = 0; i < std::size(flags); ++i)
      if (!written(flags[i].first) && flags[i].second != flag_defaults[i]) w.set_bool(flags[i].first, flags[i].second);
  }
  if (!v.chat_template.empty()) w.set_string("tokenizer.chat_template", v.chat_template);
}

}  // namespace contrail
