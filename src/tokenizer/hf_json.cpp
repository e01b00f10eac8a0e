// JSON access with path-naming errors and vocabulary helpers shared by the Hugging Face
// tokenizer loaders (see hf_detail.h).
#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "contrail/core/error.h"
#include "contrail/core/mapped_file.h"
#include "tokenizer/hf_detail.h"

namespace contrail::detail {

namespace {

constexpr size_t kMaxJsonFile = size_t{1} << 30;  // 1 GiB: far above any real tokenizer.json

const char* type_name(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "an array";
    case Json::value_t::string: return "a string";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "an integer";
    case Json::value_t::number_float: return "a number";
    default: return "a value";
  }
}

}  // namespace

Json parse_json(std::string_view text, const std::string& source) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    throw FormatError(fmt::format("{}: not valid JSON (byte {} of {}): {}", source, e.byte, text.size(), e.what()));
  } catch (const Json::exception& e) {  // e.g. a number too large for a double
    throw FormatError(fmt::format("{}: not valid JSON: {}", source, e.what()));
  }
}

Json read_json_file(const std::string& path) {
  const auto file = MappedFile::open(path);
  if (file->size() > kMaxJsonFile)
    throw FormatError(fmt::format("{}: file is {} bytes, more than the {} accepted for a JSON file", path,
                                  file->size(), kMaxJsonFile));
  return parse_json(std::string_view(reinterpret_cast<const char*>(file->data()), file->size()), path);
}

std::string describe(const Json& j) {
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    if (s.size() <= 60) return Json(s).dump(-1, ' ', false, Json::error_handler_t::replace);
    return Json(s.substr(0, 60)).dump(-1, ' ', false, Json::error_handler_t::replace) + "...";
  }
  if (j.is_array()) return fmt::format("an array of {} elements", j.size());
  if (j.is_object()) return fmt::format("an object with {} members", j.size());
  return j.dump();  // scalar: number, bool or null
}

void json_type_error(const std::string& source, const std::string& path, const Json& j, const char* expected) {
  throw FormatError(fmt::format("{}: {} is {} ({}), expected {}", source, path, describe(j), type_name(j), expected));
}

const Json& json_object(const Json& j, const std::string& source, const std::string& path) {
  if (!j.is_object()) json_type_error(source, path, j, "an object");
  return j;
}

const Json& json_array(const Json& j, const std::string& source, const std::string& path) {
  if (!j.is_array()) json_type_error(source, path, j, "an array");
  return j;
}

const std::string& json_string(const Json& j, const std::string& source, const std::string& path) {
  if (!j.is_string()) json_type_error(source, path, j, "a string");
  return j.get_ref<const std::string&>();
}

bool json_bool(const Json& j, const std::string& source, const std::string& path) {
  if (!j.is_boolean()) json_type_error(source, path, j, "true or false");
  return j.get<bool>();
}

int64_t json_int(const Json& j, const std::string& source, const std::string& path, int64_t lo, int64_t hi) {
  if (j.is_number_unsigned()) {
    const uint64_t u = j.get<uint64_t>();
    if (u > static_cast<uint64_t>(hi))
      throw FormatError(fmt::format("{}: {} = {} is out of range [{}, {}]", source, path, u, lo, hi));
    return static_cast<int64_t>(u);
  }
  if (!j.is_number_integer()) json_type_error(source, path, j, "an integer");
  const int64_t v = j.get<int64_t>();
  if (v < lo || v > hi) throw FormatError(fmt::format("{}: {} = {} is out of range [{}, {}]", source, path, v, lo, hi));
  return v;
}

const Json* json_find(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

bool is_byte_piece(std::string_view p) {
  const auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); };
  return p.size() == 6 && p.substr(0, 3) == "<0x" && hex(p[3]) && hex(p[4]) && p[5] == '>';
}

bool looks_special(std::string_view t) {
  if (t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]") return true;
  if (t.starts_with("<|") && t.ends_with("|>")) return true;
  if (t.starts_with("<\xEF\xBD\x9C") && t.ends_with("\xEF\xBD\x9C>")) return true;  // <｜...｜> (DeepSeek)
  return t.starts_with("<unused") && t.ends_with(">");                              // Gemma
}

int32_t find_token(const VocabData& v, std::string_view text) {
  const auto it = std::find(v.tokens.begin(), v.tokens.end(), text);
  return it == v.tokens.end() ? -1 : static_cast<int32_t>(it - v.tokens.begin());
}

void grow_vocab(VocabData& v, int64_t id, float pad_score, const std::string& source, const std::string& what) {
  if (id < 0 || static_cast<uint64_t>(id) >= kMaxHfVocab)
    throw FormatError(fmt::format("{}: {} = {} is out of range [0, {})", source, what, id, kMaxHfVocab));
  const bool with_scores = !v.scores.empty();
  for (size_t i = v.tokens.size(); i <= static_cast<size_t>(id); ++i) {
    v.tokens.push_back(fmt::format("[PAD{}]", i));
    v.types.push_back(TokenType::Unused);
    if (with_scores) v.scores.push_back(pad_score);
  }
}

}  // namespace contrail::detail
