// A Hugging Face model directory -> VocabData: the base vocabulary (tokenizer.json, or
// tokenizer.model) refined by tokenizer_config.json, special_tokens_map.json, config.json and
// generation_config.json, in that order (see hf_tokenizer.h for what each contributes).
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>

#include "contrail/core/error.h"
#include "contrail/core/mapped_file.h"
#include "contrail/tokenizer/hf_tokenizer.h"
#include "tokenizer/hf_detail.h"

namespace contrail {

namespace {

namespace fs = std::filesystem;
using detail::Json;

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581
constexpr float kAddedScore = -1000.0f;   // llama.cpp's converter: score of added tokens
constexpr float kPaddingScore = -10000.0f;  // ... and of [PAD<id>] tokens up to config vocab_size
constexpr size_t kMaxTemplateFile = size_t{16} << 20;  // chat_template.jinja: 16 MiB

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
  return s;
}

// tokenizer.model holds either a SentencePiece protobuf or (Llama 3) tiktoken text: lines of
// base64 and a rank. A protobuf starts with field 1's key byte 0x0A.
bool looks_like_tiktoken(const MappedFile& f) {
  const size_t n = std::min<size_t>(f.size(), 64);
  const auto* p = f.data();
  if (n == 0 || p[0] == 0x0A) return false;
  for (size_t i = 0; i < n; ++i) {
    const char c = static_cast<char>(p[i]);
    if (c == '\n') return i > 0;
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=' || c == ' ')) return false;
  }
  return true;
}

class DirLoader {
 public:
  DirLoader(fs::path dir, VocabData& v, bool from_json) : dir_(std::move(dir)), v_(v), from_json_(from_json) {}

  // added_tokens.json {content: id}: user-defined tokens (tokenizer.model vocabularies only).
  void added_tokens_json() {
    const std::string src = file("added_tokens.json");
    if (!fs::exists(src)) return;
    const Json j = detail::read_json_file(src);
    detail::json_object(j, src, "the top level");
    for (const auto& [text, idj] : j.items()) {
      const std::string path = fmt::format("[{}]", detail::describe(text));
      const int64_t id = detail::json_int(idj, src, path, 0, detail::kMaxHfVocab - 1);
      if (text.empty()) throw FormatError(fmt::format("{}: {} has empty text", src, path));
      set_token(id, text, TokenType::UserDefined, src, path);
    }
  }

  void tokenizer_config() {
    const std::string src = file("tokenizer_config.json");
    if (!fs::exists(src)) return;
    const Json j = detail::read_json_file(src);
    detail::json_object(j, src, "the top level");
    if (const Json* dec = detail::json_find(j, "added_tokens_decoder")) added_tokens_decoder(*dec, src);
    if (const Json* b = detail::json_find(j, "add_bos_token")) v_.add_bos = detail::json_bool(*b, src, "add_bos_token");
    if (const Json* b = detail::json_find(j, "add_eos_token")) v_.add_eos = detail::json_bool(*b, src, "add_eos_token");
    special_token_strings(j, src);
    if (const Json* b = detail::json_find(j, "clean_up_tokenization_spaces"))
      v_.clean_up_spaces = detail::json_bool(*b, src, "clean_up_tokenization_spaces");
    if (const Json* b = detail::json_find(j, "add_prefix_space")) {
      const bool add = detail::json_bool(*b, src, "add_prefix_space");
      if (v_.kind == VocabKind::SentencePiece)
        v_.add_space_prefix = add;
      else if (add)
        throw FormatError(fmt::format("{}: add_prefix_space = true is not supported for a byte-level BPE tokenizer", src));
    }
    if (const Json* t = detail::json_find(j, "chat_template")) chat_template(*t, src);
  }

  void special_tokens_map() {
    const std::string src = file("special_tokens_map.json");
    if (!fs::exists(src)) return;
    const Json j = detail::read_json_file(src);
    detail::json_object(j, src, "the top level");
    special_token_strings(j, src);
  }

  // config.json: pad to the embedding's vocab_size as llama.cpp's converter does; fill unset ids.
  void config_json() {
    const std::string src = file("config.json");
    if (!fs::exists(src)) return;
    const Json j = detail::read_json_file(src);
    detail::json_object(j, src, "the top level");
    if (const Json* n = detail::json_find(j, "vocab_size")) {
      const int64_t size = detail::json_int(*n, src, "vocab_size", 1, detail::kMaxHfVocab);
      if (static_cast<size_t>(size) > v_.tokens.size()) detail::grow_vocab(v_, size - 1, kPaddingScore, src, "vocab_size");
    }
    generation_ids(j, src);
  }

  void generation_config() {
    const std::string src = file("generation_config.json");
    if (!fs::exists(src)) return;
    const Json j = detail::read_json_file(src);
    detail::json_object(j, src, "the top level");
    generation_ids(j, src);
  }

  void chat_template_file() {
    if (!v_.chat_template.empty()) return;
    const std::string src = file("chat_template.jinja");
    if (!fs::exists(src)) return;
    const auto f = MappedFile::open(src);
    if (f->size() > kMaxTemplateFile)
      throw FormatError(fmt::format("{}: {} bytes, more than the {} accepted for a chat template", src, f->size(),
                                    kMaxTemplateFile));
    v_.chat_template.assign(reinterpret_cast<const char*>(f->data()), f->size());
  }

 private:
  std::string file(const char* name) const { return (dir_ / name).string(); }

  void set_token(int64_t id, const std::string& text, TokenType type, const std::string& src, const std::string& path) {
    if (static_cast<size_t>(id) >= v_.tokens.size()) detail::grow_vocab(v_, id, kAddedScore, src, path);
    v_.tokens[id] = text;
    v_.types[id] = type;
    if (!v_.scores.empty()) v_.scores[id] = kAddedScore;
  }

  // {"<id>": {"content", "special", "lstrip", "rstrip", ...}}
  void added_tokens_decoder(const Json& dec, const std::string& src) {
    detail::json_object(dec, src, "added_tokens_decoder");
    for (const auto& [key, entry] : dec.items()) {
      const std::string path = fmt::format("added_tokens_decoder[{}]", detail::describe(key));
      if (key.empty() || key.size() > 9 || !std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; }))
        throw FormatError(fmt::format("{}: {}: the key is not a token id", src, path));
      const int64_t id = std::stoll(key);
      detail::json_object(entry, src, path);
      const Json* content = detail::json_find(entry, "content");
      if (!content) throw FormatError(fmt::format("{}: {} has no \"content\"", src, path));
      std::string text = detail::json_string(*content, src, path + ".content");
      if (text.empty()) throw FormatError(fmt::format("{}: {}.content is empty", src, path));
      const auto flag = [&](const char* name) {
        const Json* f = detail::json_find(entry, name);
        return f && detail::json_bool(*f, src, path + "." + name);
      };
      if (flag("single_word"))
        throw FormatError(fmt::format("{}: {}: an added token with single_word true is not supported", src, path));
      // transformers: tokenizer.json's own added tokens take precedence over this list.
      const bool listed_in_json = from_json_ && static_cast<size_t>(id) < v_.tokens.size() &&
                                  (v_.types[id] == TokenType::Control || v_.types[id] == TokenType::UserDefined);
      if (listed_in_json) continue;
      TokenType type = TokenType::UserDefined;
      if (flag("special") || (!from_json_ && detail::looks_special(text)))
        type = TokenType::Control;
      else if (!from_json_)
        text = replace_all(std::move(text), kSpaceMarker, " ");  // llama.cpp: "pre-normalize user-defined spaces"
      set_token(id, text, type, src, path);
      const auto add_unique = [](std::vector<int32_t>& ids, int32_t i) {
        if (std::find(ids.begin(), ids.end(), i) == ids.end()) ids.push_back(i);
      };
      if (flag("lstrip")) add_unique(v_.lstrip_ids, static_cast<int32_t>(id));
      if (flag("rstrip")) add_unique(v_.rstrip_ids, static_cast<int32_t>(id));
    }
  }

  // bos_token / eos_token / unk_token / pad_token: a string, an AddedToken object, or null.
  void special_token_strings(const Json& j, const std::string& src) {
    const std::pair<const char*, int32_t*> fields[] = {
        {"bos_token", &v_.bos_id}, {"eos_token", &v_.eos_id}, {"unk_token", &v_.unk_id}, {"pad_token", &v_.pad_id}};
    for (const auto& [name, id] : fields) {
      const Json* t = detail::json_find(j, name);
      if (!t) continue;
      std::string path = name;
      if (t->is_object()) {
        t = detail::json_find(*t, "content");
        path += ".content";
        if (!t) throw FormatError(fmt::format("{}: {} has no \"content\"", src, name));
      }
      const std::string& text = detail::json_string(*t, src, path);
      const int32_t found = detail::find_token(v_, text);
      if (found < 0)
        throw FormatError(fmt::format("{}: {} = {} is not a token of the vocabulary", src, path, detail::describe(*t)));
      *id = found;
    }
  }

  // A token id from config.json / generation_config.json, in range; -1 (or null) means none.
  int32_t config_id(const Json& j, const std::string& src, const std::string& path) const {
    const int64_t id = detail::json_int(j, src, path, -1, static_cast<int64_t>(v_.tokens.size()) - 1);
    return static_cast<int32_t>(id);
  }

  // bos/pad_token_id fill unset ids; eos_token_id (int or list): the first fills an unset eos_id,
  // every other id becomes an extra end-of-generation id.
  void generation_ids(const Json& j, const std::string& src) {
    const std::pair<const char*, int32_t*> singles[] = {{"bos_token_id", &v_.bos_id}, {"pad_token_id", &v_.pad_id}};
    for (const auto& [name, id] : singles) {
      const Json* t = detail::json_find(j, name);
      if (!t) continue;
      const int32_t value = config_id(*t, src, name);
      if (*id < 0) *id = value;
    }
    const Json* eos = detail::json_find(j, "eos_token_id");
    if (!eos) return;
    std::vector<int32_t> ids;
    if (eos->is_array()) {
      for (size_t i = 0; i < eos->size(); ++i) {
        const int32_t id = config_id((*eos)[i], src, fmt::format("eos_token_id[{}]", i));
        if (id >= 0) ids.push_back(id);
      }
    } else {
      const int32_t id = config_id(*eos, src, "eos_token_id");
      if (id >= 0) ids.push_back(id);
    }
    if (ids.empty()) return;
    if (v_.eos_id < 0) v_.eos_id = ids[0];
    for (const int32_t id : ids)
      if (id != v_.eos_id && std::find(v_.eog_ids.begin(), v_.eog_ids.end(), id) == v_.eog_ids.end())
        v_.eog_ids.push_back(id);
  }

  // A string, or transformers' list of {"name", "template"}: the one named "default".
  void chat_template(const Json& t, const std::string& src) {
    if (t.is_string()) {
      v_.chat_template = t.get<std::string>();
      return;
    }
    detail::json_array(t, src, "chat_template");
    for (size_t i = 0; i < t.size(); ++i) {
      const std::string path = fmt::format("chat_template[{}]", i);
      detail::json_object(t[i], src, path);
      const Json* name = detail::json_find(t[i], "name");
      const Json* tmpl = detail::json_find(t[i], "template");
      if (!name || !tmpl) throw FormatError(fmt::format("{}: {} needs \"name\" and \"template\"", src, path));
      if (detail::json_string(*name, src, path + ".name") == "default")
        v_.chat_template = detail::json_string(*tmpl, src, path + ".template");
    }
  }

  fs::path dir_;
  VocabData& v_;
  bool from_json_;
};

}  // namespace

VocabData load_hf_tokenizer(const std::string& dir) {
  const fs::path d(dir);
  if (!fs::is_directory(d)) throw FormatError(fmt::format("{}: not a directory", dir));
  VocabData v;
  bool from_json = false;
  if (fs::exists(d / "tokenizer.json")) {
    v = load_hf_tokenizer_json((d / "tokenizer.json").string());
    from_json = true;
  } else if (fs::exists(d / "tokenizer.model")) {
    const std::string path = (d / "tokenizer.model").string();
    const auto f = MappedFile::open(path);
    v = looks_like_tiktoken(*f)
            ? detail::parse_tiktoken_model(std::string_view(reinterpret_cast<const char*>(f->data()), f->size()), path)
            : detail::parse_sentencepiece_model(f->data(), f->size(), path);
  } else {
    throw FormatError(fmt::format("{}: no tokenizer.json or tokenizer.model", dir));
  }
  DirLoader loader(d, v, from_json);
  if (!from_json) loader.added_tokens_json();
  loader.tokenizer_config();
  loader.special_tokens_map();
  loader.config_json();
  loader.generation_config();
  loader.chat_template_file();
  v.validate(dir);
  return v;
}

}  // namespace contrail
