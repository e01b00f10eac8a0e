// HF `tokenizers` JSON (tokenizer.json) -> VocabData. See hf_tokenizer.h for the supported subset;
// anything outside it is a FormatError naming the JSON path, never a silently different tokenizer.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "contrail/core/error.h"
#include "contrail/tokenizer/hf_tokenizer.h"
#include "tokenizer/hf_detail.h"

namespace contrail {

namespace detail {

namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581, SentencePiece's space
// GPT-2's pre-tokenizer regex, used by HF's ByteLevel pre-tokenizer when use_regex is true.
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Nesting limit for Sequence normalizers / pre-tokenizers / post-processors (real files use 1).
constexpr int kMaxNesting = 8;

// What the normalizer and pre-tokenizer sections say about the text pipeline.
struct Pipeline {
  bool nfc = false;            // NFC normalizer
  bool replace_space = false;  // Replace(" " -> U+2581) normalizer
  bool prepend = false;        // Prepend(U+2581) normalizer
  bool byte_level = false;     // ByteLevel pre-tokenizer
  bool metaspace = false;      // Metaspace pre-tokenizer
  bool metaspace_prefix = true;
  std::vector<std::string> patterns;  // pre-tokenizer regexes, in order
};

class JsonLoader {
 public:
  JsonLoader(const Json& root, const std::string& source) : root_(root), src_(source) {}

  VocabData load() {
    json_object(root_, src_, "the top level");
    if (const Json* n = json_find(root_, "normalizer")) read_normalizer(*n, "normalizer", 0);
    if (const Json* p = json_find(root_, "pre_tokenizer")) read_pre_tokenizer(*p, "pre_tokenizer", 0);
    choose_kind();
    const Json* model = json_find(root_, "model");
    if (!model) throw FormatError(fmt::format("{}: no \"model\" section", src_));
    read_model(json_object(*model, src_, "model"));
    if (const Json* a = json_find(root_, "added_tokens")) read_added_tokens(json_array(*a, src_, "added_tokens"));
    v_.add_bos = v_.add_eos = false;
    if (const Json* p = json_find(root_, "post_processor")) read_post_processor(*p, "post_processor", 0);
    v_.validate(src_);
    return std::move(v_);
  }

 private:
  std::string type_of(const Json& j, const std::string& path) const {
    json_object(j, src_, path);
    const Json* t = json_find(j, "type");
    if (!t) throw FormatError(fmt::format("{}: {} has no \"type\"", src_, path));
    return json_string(*t, src_, path + ".type");
  }

  // A member that must be a string when present.
  std::string opt_string(const Json& obj, const char* key, const std::string& path, const std::string& def) const {
    const Json* j = json_find(obj, key);
    return j ? json_string(*j, src_, path + "." + key) : def;
  }
  bool opt_bool(const Json& obj, const char* key, const std::string& path, bool def) const {
    const Json* j = json_find(obj, key);
    return j ? json_bool(*j, src_, path + "." + key) : def;
  }

  [[noreturn]] void unsupported(const std::string& path, const std::string& what) const {
    throw FormatError(fmt::format("{}: {}: {} is not supported", src_, path, what));
  }

  void check_nesting(int depth, const std::string& path) const {
    if (depth > kMaxNesting)
      throw FormatError(fmt::format("{}: {} nests Sequences deeper than {}", src_, path, kMaxNesting));
  }

  // {"String": "x"} pattern (Replace / Split); Regex patterns are rejected where a literal is needed.
  std::string literal_pattern(const Json& j, const std::string& path) const {
    json_object(j, src_, path);
    const Json* s = json_find(j, "String");
    if (!s) unsupported(path, fmt::format("pattern {} (only {{\"String\": ...}} here)", describe(j)));
    return json_string(*s, src_, path + ".String");
  }

  void read_normalizer(const Json& j, const std::string& path, int depth) {
    check_nesting(depth, path);
    const std::string type = type_of(j, path);
    if (type == "Sequence") {
      const Json* list = json_find(j, "normalizers");
      if (!list) throw FormatError(fmt::format("{}: {} has no \"normalizers\"", src_, path));
      json_array(*list, src_, path + ".normalizers");
      for (size_t i = 0; i < list->size(); ++i)
        read_normalizer((*list)[i], fmt::format("{}.normalizers[{}]", path, i), depth + 1);
    } else if (type == "NFC") {
      p_.nfc = true;
    } else if (type == "Replace") {
      const Json* pat = json_find(j, "pattern");
      if (!pat) throw FormatError(fmt::format("{}: {} has no \"pattern\"", src_, path));
      const std::string from = literal_pattern(*pat, path + ".pattern");
      const std::string to = opt_string(j, "content", path, "");
      if (from != " " || to != kSpaceMarker)
        unsupported(path, fmt::format("Replace '{}' -> '{}' (only ' ' -> U+2581)", from, to));
      p_.replace_space = true;
    } else if (type == "Prepend") {
      const std::string what = opt_string(j, "prepend", path, "");
      if (what != kSpaceMarker) unsupported(path, fmt::format("Prepend '{}' (only U+2581)", what));
      p_.prepend = true;
    } else {
      unsupported(path, fmt::format("normalizer type '{}' (supported: NFC, Replace, Prepend, Sequence)", type));
    }
  }

  void read_pre_tokenizer(const Json& j, const std::string& path, int depth) {
    check_nesting(depth, path);
    const std::string type = type_of(j, path);
    if (type == "Sequence") {
      const Json* list = json_find(j, "pretokenizers");
      if (!list) throw FormatError(fmt::format("{}: {} has no \"pretokenizers\"", src_, path));
      json_array(*list, src_, path + ".pretokenizers");
      for (size_t i = 0; i < list->size(); ++i)
        read_pre_tokenizer((*list)[i], fmt::format("{}.pretokenizers[{}]", path, i), depth + 1);
    } else if (type == "ByteLevel") {
      // HF's defaults: add_prefix_space true, use_regex true.
      if (opt_bool(j, "add_prefix_space", path, true)) unsupported(path, "ByteLevel with add_prefix_space true");
      if (opt_bool(j, "use_regex", path, true)) p_.patterns.emplace_back(kGpt2Pattern);
      p_.byte_level = true;
    } else if (type == "Split") {
      const std::string behavior = opt_string(j, "behavior", path, "");
      if (behavior != "Isolated") unsupported(path, fmt::format("Split behavior '{}' (only Isolated)", behavior));
      if (opt_bool(j, "invert", path, false)) unsupported(path, "Split with invert true");
      const Json* pat = json_find(j, "pattern");
      if (!pat) throw FormatError(fmt::format("{}: {} has no \"pattern\"", src_, path));
      json_object(*pat, src_, path + ".pattern");
      if (const Json* re = json_find(*pat, "Regex")) {
        p_.patterns.push_back(json_string(*re, src_, path + ".pattern.Regex"));
      } else {
        p_.patterns.push_back(escape_regex(literal_pattern(*pat, path + ".pattern")));
      }
    } else if (type == "Digits") {
      p_.patterns.emplace_back(opt_bool(j, "individual_digits", path, false) ? R"(\p{N})" : R"(\p{N}+)");
    } else if (type == "Metaspace") {
      if (opt_string(j, "replacement", path, std::string(kSpaceMarker)) != kSpaceMarker)
        unsupported(path, "Metaspace with a replacement other than U+2581");
      if (opt_bool(j, "split", path, true))
        unsupported(path, "Metaspace with split true (pieces merged across words only within a word)");
      if (const Json* scheme = json_find(j, "prepend_scheme")) {
        const std::string& s = json_string(*scheme, src_, path + ".prepend_scheme");
        if (s != "first" && s != "always" && s != "never")
          throw FormatError(fmt::format("{}: {}.prepend_scheme = '{}' is not first/always/never", src_, path, s));
        p_.metaspace_prefix = s != "never";
      } else {
        p_.metaspace_prefix = opt_bool(j, "add_prefix_space", path, true);
      }
      p_.metaspace = true;
    } else {
      unsupported(path,
                  fmt::format("pre-tokenizer type '{}' (supported: ByteLevel, Split, Digits, Metaspace, Sequence)", type));
    }
  }

  // A literal as a PCRE2 pattern: ASCII punctuation escaped, everything else as is.
  static std::string escape_regex(const std::string& s) {
    std::string out;
    for (const char c : s) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x80 && !std::isalnum(u) && c != ' ') out.push_back('\\');
      out.push_back(c);
    }
    return out;
  }

  void choose_kind() {
    const bool spm = p_.metaspace || p_.replace_space;
    if (p_.byte_level && spm)
      throw FormatError(fmt::format("{}: mixes a ByteLevel pre-tokenizer with SentencePiece-style space handling "
                                    "(Metaspace or Replace ' ' -> U+2581)",
                                    src_));
    if (p_.byte_level) {
      if (p_.prepend) unsupported("normalizer", "Prepend with a ByteLevel pre-tokenizer");
      v_.kind = VocabKind::BytePair;
      v_.model = "gpt2";
      v_.add_space_prefix = false;
    } else if (spm) {
      if (!p_.patterns.empty()) unsupported("pre_tokenizer", "Split/Digits with SentencePiece-style space handling");
      if (p_.metaspace && (p_.replace_space || p_.prepend))
        unsupported("normalizer", "Replace/Prepend together with a Metaspace pre-tokenizer");
      v_.kind = VocabKind::SentencePiece;
      v_.model = "llama";
      v_.pre = "default";
      v_.add_space_prefix = p_.metaspace ? p_.metaspace_prefix : p_.prepend;
    } else {
      throw FormatError(fmt::format("{}: neither byte-level (ByteLevel pre-tokenizer) nor SentencePiece-style "
                                    "(Metaspace pre-tokenizer or Replace ' ' -> U+2581 normalizer); not supported",
                                    src_));
    }
    v_.pre_patterns = p_.patterns;
    v_.normalize_nfc = p_.nfc;
  }

  void read_model(const Json& m) {
    const std::string type = opt_string(m, "type", "model", "BPE");
    if (type != "BPE") unsupported("model.type", fmt::format("'{}' (only BPE)", type));
    if (const Json* d = json_find(m, "dropout")) {
      if (!d->is_number() || d->get<double>() != 0.0) unsupported("model.dropout", describe(*d));
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (!opt_string(m, key, "model", "").empty()) unsupported(std::string("model.") + key, "a non-empty affix");
    v_.ignore_merges = opt_bool(m, "ignore_merges", "model", false);
    v_.byte_fallback = opt_bool(m, "byte_fallback", "model", false);

    const Json* vocab = json_find(m, "vocab");
    if (!vocab) throw FormatError(fmt::format("{}: model has no \"vocab\"", src_));
    json_object(*vocab, src_, "model.vocab");
    if (vocab->size() > kMaxHfVocab)
      throw FormatError(fmt::format("{}: model.vocab has {} entries, more than {}", src_, vocab->size(), kMaxHfVocab));
    std::vector<const std::string*> by_id;  // (max id + 1) model piece per id, nullptr for holes
    for (const auto& [text, idj] : vocab->items()) {
      const auto id = static_cast<size_t>(
          json_int(idj, src_, fmt::format("model.vocab[{}]", describe(text)), 0, kMaxHfVocab - 1));
      if (id >= by_id.size()) by_id.resize(id + 1, nullptr);
      if (by_id[id])
        throw FormatError(fmt::format("{}: model.vocab gives id {} to both {} and {}", src_, id, describe(*by_id[id]),
                                      describe(text)));
      by_id[id] = &text;
      ids_.emplace(text, static_cast<int32_t>(id));
    }
    check_holes(by_id.size(), vocab->size(), "model.vocab");
    v_.tokens.reserve(by_id.size());
    v_.types.reserve(by_id.size());
    for (size_t i = 0; i < by_id.size(); ++i) {
      if (!by_id[i]) {
        v_.tokens.push_back(fmt::format("[PAD{}]", i));
        v_.types.push_back(TokenType::Unused);
        continue;
      }
      v_.tokens.push_back(*by_id[i]);
      const bool byte = v_.kind == VocabKind::SentencePiece && is_byte_piece(*by_id[i]);
      v_.types.push_back(byte ? TokenType::Byte : TokenType::Normal);
    }

    if (const Json* merges = json_find(m, "merges")) read_merges(json_array(*merges, src_, "model.merges"));
    if (const Json* unk = json_find(m, "unk_token")) {
      const std::string& text = json_string(*unk, src_, "model.unk_token");
      const auto it = ids_.find(text);
      if (it == ids_.end())
        throw FormatError(fmt::format("{}: model.unk_token {} is not in model.vocab", src_, describe(*unk)));
      v_.unk_id = it->second;
    }
  }

  void check_holes(size_t n_total, size_t n_listed, const char* what) const {
    if (n_total - std::min(n_total, n_listed) > n_listed + 1024)
      throw FormatError(fmt::format("{}: {} ids reach {} but only {} tokens are listed (too many unused ids)", src_,
                                    what, n_total - 1, n_listed));
  }

  void read_merges(const Json& merges) {
    v_.merges.reserve(merges.size());
    std::string left, right;
    for (size_t i = 0; i < merges.size(); ++i) {
      const Json& mj = merges[i];
      const std::string path = fmt::format("model.merges[{}]", i);
      if (mj.is_string()) {
        const std::string& s = mj.get_ref<const std::string&>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
          throw FormatError(fmt::format("{}: {} = {} is not two pieces separated by one space", src_, path, describe(mj)));
        left.assign(s, 0, sp);
        right.assign(s, sp + 1);
      } else if (mj.is_array() && mj.size() == 2) {
        left = json_string(mj[0], src_, path + "[0]");
        right = json_string(mj[1], src_, path + "[1]");
        if (left.find(' ') != std::string::npos || right.find(' ') != std::string::npos)
          unsupported(path, "a merge piece containing a space");
      } else {
        json_type_error(src_, path, mj, "\"left right\" or [\"left\", \"right\"]");
      }
      for (const std::string* piece : {&left, &right})
        if (!ids_.count(*piece))
          throw FormatError(fmt::format("{}: {} names {}, which is not in model.vocab", src_, path, describe(*piece)));
      if (!ids_.count(left + right))
        throw FormatError(fmt::format("{}: {} merges into {}, which is not in model.vocab", src_, path,
                                      describe(left + right)));
      v_.merges.push_back(left + " " + right);
    }
  }

  void read_added_tokens(const Json& list) {
    const size_t listed = v_.tokens.size();
    std::unordered_set<int64_t> seen;
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string path = fmt::format("added_tokens[{}]", i);
      const Json& a = json_object(list[i], src_, path);
      const Json* idj = json_find(a, "id");
      const Json* content = json_find(a, "content");
      if (!idj || !content) throw FormatError(fmt::format("{}: {} needs \"id\" and \"content\"", src_, path));
      const int64_t id = json_int(*idj, src_, path + ".id", 0, kMaxHfVocab - 1);
      const std::string& text = json_string(*content, src_, path + ".content");
      if (!seen.insert(id).second) throw FormatError(fmt::format("{}: {}.id = {} is listed twice", src_, path, id));
      if (text.empty()) throw FormatError(fmt::format("{}: {}.content is empty", src_, path));
      if (opt_bool(a, "single_word", path, false)) unsupported(path, "an added token with single_word true");
      if (static_cast<size_t>(id) >= v_.tokens.size()) grow_vocab(v_, id, 0.0f, src_, path + ".id");
      v_.tokens[id] = text;
      v_.types[id] = opt_bool(a, "special", path, false) ? TokenType::Control : TokenType::UserDefined;
      if (opt_bool(a, "lstrip", path, false)) v_.lstrip_ids.push_back(static_cast<int32_t>(id));
      if (opt_bool(a, "rstrip", path, false)) v_.rstrip_ids.push_back(static_cast<int32_t>(id));
    }
    check_holes(v_.tokens.size(), listed + list.size(), "added_tokens");
  }

  void read_post_processor(const Json& j, const std::string& path, int depth) {
    check_nesting(depth, path);
    const std::string type = type_of(j, path);
    if (type == "Sequence") {
      const Json* list = json_find(j, "processors");
      if (!list) throw FormatError(fmt::format("{}: {} has no \"processors\"", src_, path));
      json_array(*list, src_, path + ".processors");
      for (size_t i = 0; i < list->size(); ++i)
        read_post_processor((*list)[i], fmt::format("{}.processors[{}]", path, i), depth + 1);
    } else if (type == "TemplateProcessing") {
      read_template(j, path);
    } else if (type != "ByteLevel") {  // ByteLevel only adjusts offsets
      unsupported(path, fmt::format("post-processor type '{}' (supported: TemplateProcessing, ByteLevel, Sequence)",
                                    type));
    }
  }

  // "single": [SpecialToken..., Sequence A, SpecialToken...]: one token before A -> BOS, one after -> EOS.
  void read_template(const Json& j, const std::string& path) {
    const Json* single = json_find(j, "single");
    if (!single) throw FormatError(fmt::format("{}: {} has no \"single\" template", src_, path));
    json_array(*single, src_, path + ".single");
    const Json* specials = json_find(j, "special_tokens");
    std::vector<int32_t> before, after;
    bool seen_sequence = false;
    for (size_t i = 0; i < single->size(); ++i) {
      const std::string ipath = fmt::format("{}.single[{}]", path, i);
      const Json& item = json_object((*single)[i], src_, ipath);
      if (json_find(item, "Sequence")) {
        if (seen_sequence) unsupported(ipath, "a template with two sequences");
        seen_sequence = true;
        continue;
      }
      const Json* st = json_find(item, "SpecialToken");
      if (!st) unsupported(ipath, fmt::format("template item {}", describe(item)));
      const Json* name = json_find(json_object(*st, src_, ipath + ".SpecialToken"), "id");
      if (!name) throw FormatError(fmt::format("{}: {}.SpecialToken has no \"id\"", src_, ipath));
      const std::string& key = json_string(*name, src_, ipath + ".SpecialToken.id");
      const Json* entry = specials ? json_find(json_object(*specials, src_, path + ".special_tokens"), key) : nullptr;
      if (!entry)
        throw FormatError(fmt::format("{}: {} uses special token {} missing from {}.special_tokens", src_, ipath,
                                      describe(*name), path));
      const std::string epath = fmt::format("{}.special_tokens[{}].ids", path, describe(*name));
      const Json* ids = json_find(json_object(*entry, src_, epath), "ids");
      if (!ids) throw FormatError(fmt::format("{}: {} is missing", src_, epath));
      json_array(*ids, src_, epath);
      for (size_t k = 0; k < ids->size(); ++k) {
        const auto id = static_cast<int32_t>(json_int((*ids)[k], src_, fmt::format("{}[{}]", epath, k), 0,
                                                      static_cast<int64_t>(v_.tokens.size()) - 1));
        (seen_sequence ? after : before).push_back(id);
      }
    }
    if (!seen_sequence) unsupported(path + ".single", "a template without the $A sequence");
    if (before.size() > 1 || after.size() > 1)
      unsupported(path + ".single", "more than one special token before or after the sequence");
    if (!before.empty()) v_.bos_id = before[0];
    if (!after.empty()) v_.eos_id = after[0];
    v_.add_bos = !before.empty();
    v_.add_eos = !after.empty();
  }

  const Json& root_;
  const std::string& src_;
  Pipeline p_;
  VocabData v_;
  std::unordered_map<std::string, int32_t> ids_;  // model.vocab piece -> id
};

}  // namespace

VocabData parse_hf_tokenizer_json(std::string_view text, const std::string& source) {
  const Json root = parse_json(text, source);
  return JsonLoader(root, source).load();
}

}  // namespace detail

VocabData load_hf_tokenizer_json(const std::string& path) {
  const detail::Json root = detail::read_json_file(path);
  return detail::JsonLoader(root, path).load();
}

}  // namespace contrail
