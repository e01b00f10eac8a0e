// safetensors reader: validates the length prefix and the JSON header of a memory-mapped image
// (layout: huggingface/safetensors README) and builds tensor views into the mapping.
//
// Hostile-input policy: the header length is bounded (kMaxHeaderBytes and the file size) before
// any parsing; the JSON parser is stopped at the first container nested deeper than the format
// allows and at the first duplicate key (nlohmann::json would otherwise keep the last one
// silently); every number is checked for type, sign and overflow before use.
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "contrail/core/error.h"
#include "contrail/core/mapped_file.h"
#include "contrail/model/safetensors.h"

namespace contrail {
namespace {

using json = nlohmann::json;

constexpr const char* kMetadataKey = "__metadata__";
// Containers may start at depth 0 (the header), 1 (a tensor entry, __metadata__) and 2 (shape,
// data_offsets); anything deeper cannot be valid.
constexpr int kMaxContainerDepth = 2;
constexpr size_t kMaxShownChars = 64;  // longest JSON value quoted verbatim in an error message

struct StDType {
  std::string_view name;
  size_t size;  // bytes per element
  std::optional<DType> dtype;
};

// The safetensors dtypes with whole-byte elements. Sub-byte types (F4, F6_*) are rejected as
// unsupported rather than unknown.
constexpr StDType kDTypes[] = {
    {"BOOL", 1, std::nullopt}, {"U8", 1, std::nullopt},      {"I8", 1, DType::I8},
    {"F8_E5M2", 1, std::nullopt}, {"F8_E4M3", 1, std::nullopt}, {"F8_E8M0", 1, std::nullopt},
    {"I16", 2, DType::I16},    {"U16", 2, std::nullopt},     {"F16", 2, DType::F16},
    {"BF16", 2, DType::BF16},  {"I32", 4, DType::I32},       {"U32", 4, std::nullopt},
    {"F32", 4, DType::F32},    {"F64", 8, DType::F64},       {"I64", 8, DType::I64},
    {"U64", 8, std::nullopt},  {"C64", 8, std::nullopt},
};
constexpr std::string_view kSubByteDTypes[] = {"F4", "F6_E2M3", "F6_E3M2"};

// A JSON value as it appears in the file, shortened for error messages.
std::string show(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > kMaxShownChars) s = s.substr(0, kMaxShownChars) + "...";
  return s;
}

std::string_view type_name(const json& v) {
  if (v.is_number_integer()) return "integer";
  if (v.is_number_float()) return "number";
  return v.type_name();
}

// Tracks the keys of every open object while nlohmann parses, to reject duplicates, and rejects
// containers nested deeper than the format allows. Depths follow nlohmann's callback convention:
// an object_start at depth d has its keys reported at depth d + 1.
class HeaderGuard {
 public:
  explicit HeaderGuard(const std::string& src) : src_(src) {}

  bool operator()(int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth > kMaxContainerDepth)
          throw FormatError(fmt::format("{}: header JSON nests {} containers deep{} (at most {} allowed)", src_,
                                        depth + 1, where(), kMaxContainerDepth + 1));
        if (event == json::parse_event_t::object_start) keys_.emplace_back();
        break;
      case json::parse_event_t::object_end:
        keys_.pop_back();
        break;
      case json::parse_event_t::key: {
        std::string key = parsed.get<std::string>();
        if (!keys_.back().insert(key).second) {
          if (depth == 1) throw FormatError(fmt::format("{}: duplicate tensor name '{}' in the header", src_, key));
          throw FormatError(fmt::format("{}: duplicate key '{}'{}", src_, key, where()));
        }
        if (depth == 1) entry_ = std::move(key);
        break;
      }
      default:
        break;
    }
    return true;
  }

 private:
  std::string where() const { return entry_.empty() ? std::string() : fmt::format(" in entry '{}'", entry_); }

  const std::string& src_;
  std::vector<std::unordered_set<std::string>> keys_;  // one set per open object, outermost first
  std::string entry_;                                  // the top-level key being parsed
};

// A JSON integer in [0, INT64_MAX], or FormatError naming `what`.
int64_t non_negative(const json& v, const std::string& src, const std::string& what) {
  if (!v.is_number_integer())
    throw FormatError(fmt::format("{}: {} is {} {} (must be a non-negative integer)", src, what, type_name(v), show(v)));
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw FormatError(fmt::format("{}: {} is {} (exceeds the maximum {})", src, what, u,
                                    std::numeric_limits<int64_t>::max()));
    return static_cast<int64_t>(u);
  }
  const int64_t i = v.get<int64_t>();
  if (i < 0) throw FormatError(fmt::format("{}: {} is {} (must be a non-negative integer)", src, what, i));
  return i;
}

const StDType& lookup_dtype(const json& v, const std::string& src, const std::string& what) {
  if (!v.is_string())
    throw FormatError(fmt::format("{}: {} dtype is {} {} (must be a string)", src, what, type_name(v), show(v)));
  const std::string& s = v.get_ref<const std::string&>();
  for (const StDType& d : kDTypes)
    if (d.name == s) return d;
  for (std::string_view d : kSubByteDTypes)
    if (d == s) throw FormatError(fmt::format("{}: {} has sub-byte dtype {} (not supported)", src, what, s));
  throw FormatError(fmt::format("{}: {} has unknown dtype {}", src, what, show(v)));
}

// Names end up in error messages and lookups: non-empty, no control characters.
void check_name(const std::string& name, const std::string& src) {
  if (name.empty()) throw FormatError(fmt::format("{}: tensor with an empty name", src));
  for (size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<uint8_t>(name[i]);
    if (c < 0x20 || c == 0x7f)
      throw FormatError(fmt::format("{}: tensor name {} has control character {:#04x} at position {}", src,
                                    show(json(name)), c, i));
  }
}

}  // namespace

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<MappedFile> file = MappedFile::open(path);
  const uint8_t* data = file->data();
  const size_t size = file->size();
  return parse(std::move(file), data, size, path);
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::parse(std::shared_ptr<const void> owner, const uint8_t* data,
                                                        size_t size, std::string source) {
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->owner_ = std::move(owner);
  f->data_ = data;
  f->size_ = size;
  f->source_ = std::move(source);
  f->parse_all();
  return f;
}

void SafetensorsFile::parse_all() {
  const std::string& src = source_;

  // ---- length prefix
  ByteReader r(data_, size_, src);
  if (size_ < 8)
    throw FormatError(fmt::format("{}: file size {} is smaller than the 8-byte header length field", src, size_));
  const uint64_t n = r.u64("header length");
  if (n > kMaxHeaderBytes)
    throw FormatError(fmt::format("{}: header length {} exceeds the limit of {} bytes", src, n, kMaxHeaderBytes));
  if (n > r.remaining())
    throw FormatError(fmt::format("{}: header length {} extends beyond the file size {} ({} bytes after the length "
                                  "field)",
                                  src, n, size_, r.remaining()));
  const auto* text = reinterpret_cast<const char*>(r.bytes(static_cast<size_t>(n), "header"));
  data_offset_ = 8 + static_cast<size_t>(n);
  const size_t region = size_ - data_offset_;  // bytes in the data region

  // ---- JSON
  json header;
  try {
    HeaderGuard guard(src);
    header = json::parse(text, text + n, std::ref(guard));
  } catch (const json::exception& e) {
    throw FormatError(fmt::format("{}: header ({} bytes at offset 8) is not valid JSON: {}", src, n, e.what()));
  }
  if (!header.is_object())
    throw FormatError(fmt::format("{}: header is a JSON {}, expected an object", src, type_name(header)));

  // ---- entries (nlohmann iterates keys in sorted order; the result is re-sorted by offset below)
  struct Range {
    int64_t begin, end;
  };
  std::vector<Range> ranges;  // parallel to tensors_
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      if (!value.is_object())
        throw FormatError(fmt::format("{}: {} is {} {} (must be an object of strings)", src, kMetadataKey,
                                      type_name(value), show(value)));
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string())
          throw FormatError(fmt::format("{}: {} value of key '{}' is {} {} (must be a string)", src, kMetadataKey, mk,
                                        type_name(mv), show(mv)));
        metadata_.emplace(mk, mv.get<std::string>());
      }
      continue;
    }
    check_name(key, src);
    const std::string what = fmt::format("tensor '{}'", key);
    if (!value.is_object())
      throw FormatError(fmt::format("{}: {} entry is {} {} (must be an object)", src, what, type_name(value),
                                    show(value)));
    for (const auto& [field, unused] : value.items())
      if (field != "dtype" && field != "shape" && field != "data_offsets")
        throw FormatError(fmt::format("{}: {} has unknown field '{}' (expected dtype, shape, data_offsets)", src, what,
                                      field));
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!value.contains(field)) throw FormatError(fmt::format("{}: {} lacks the field '{}'", src, what, field));

    TensorInfo t;
    t.name = key;
    const StDType& dt = lookup_dtype(value["dtype"], src, what);
    t.st_dtype = std::string(dt.name);
    t.dtype = dt.dtype;

    const json& shape = value["shape"];
    if (!shape.is_array())
      throw FormatError(fmt::format("{}: {} shape is {} {} (must be an array of integers)", src, what,
                                    type_name(shape), show(shape)));
    int64_t numel = 1;
    for (size_t d = 0; d < shape.size(); ++d) {
      const int64_t dim = non_negative(shape[d], src, fmt::format("{} shape[{}]", what, d));
      if (dim != 0 && numel > std::numeric_limits<int64_t>::max() / dim)
        throw FormatError(fmt::format("{}: {} shape {} element count overflows int64 at dim {}", src, what,
                                      show(shape), d));
      numel *= dim;
      t.shape.push_back(dim);
    }
    if (static_cast<uint64_t>(numel) > std::numeric_limits<uint64_t>::max() / dt.size)
      throw FormatError(fmt::format("{}: {} byte size overflows ({} elements of {})", src, what, numel, dt.name));
    const uint64_t nbytes = static_cast<uint64_t>(numel) * dt.size;

    const json& offs = value["data_offsets"];
    if (!offs.is_array() || offs.size() != 2)
      throw FormatError(fmt::format("{}: {} data_offsets is {} (must be [begin, end])", src, what, show(offs)));
    const int64_t begin = non_negative(offs[0], src, what + " data_offsets[0]");
    const int64_t end = non_negative(offs[1], src, what + " data_offsets[1]");
    if (begin > end)
      throw FormatError(fmt::format("{}: {} data_offsets [{}, {}] has begin > end", src, what, begin, end));
    if (static_cast<uint64_t>(end) > region)
      throw FormatError(fmt::format("{}: {} data_offsets [{}, {}] extend beyond the {}-byte data region (file size {}, "
                                    "data starts at offset {})",
                                    src, what, begin, end, region, size_, data_offset_));
    if (static_cast<uint64_t>(end - begin) != nbytes)
      throw FormatError(fmt::format("{}: {} data_offsets [{}, {}] span {} bytes, but shape {} of {} needs {} bytes",
                                    src, what, begin, end, end - begin, show(shape), dt.name, nbytes));
    t.offset = data_offset_ + static_cast<size_t>(begin);
    t.nbytes = static_cast<size_t>(nbytes);
    tensors_.push_back(std::move(t));
    ranges.push_back({begin, end});
  }

  // ---- file order and overlaps
  std::vector<size_t> order(tensors_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return ranges[a].begin != ranges[b].begin ? ranges[a].begin < ranges[b].begin : tensors_[a].name < tensors_[b].name;
  });
  const size_t none = std::numeric_limits<size_t>::max();
  size_t last = none;  // the non-empty tensor reaching furthest so far
  for (size_t i : order) {
    const Range& cur = ranges[i];
    if (cur.begin == cur.end) continue;  // an empty range overlaps nothing
    if (last != none && cur.begin < ranges[last].end)
      throw FormatError(fmt::format("{}: tensor '{}' data_offsets [{}, {}] overlap tensor '{}' data_offsets [{}, {}]",
                                    src, tensors_[i].name, cur.begin, cur.end, tensors_[last].name, ranges[last].begin,
                                    ranges[last].end));
    last = i;  // sorted by begin and non-overlapping, so this one reaches furthest
  }
  std::vector<TensorInfo> sorted;
  sorted.reserve(tensors_.size());
  for (size_t i : order) sorted.push_back(std::move(tensors_[i]));
  tensors_ = std::move(sorted);
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

const SafetensorsFile::TensorInfo* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Tensor SafetensorsFile::tensor(std::string_view name) const {
  const TensorInfo* t = find(name);
  if (!t) throw FormatError(fmt::format("{}: tensor '{}' not found", source_, name));
  if (!t->dtype)
    throw FormatError(fmt::format("{}: tensor '{}' has dtype {}, which has no tensor type (supported: F32, F16, BF16, "
                                  "F64, I8, I16, I32, I64)",
                                  source_, name, t->st_dtype));
  if (t->shape.size() > static_cast<size_t>(Tensor::kMaxDims))
    throw FormatError(fmt::format("{}: tensor '{}' has {} dims (at most {} supported)", source_, name, t->shape.size(),
                                  Tensor::kMaxDims));
  const size_t elem = dtype_traits(*t->dtype).type_size;
  // Kernels rely on naturally aligned elements; the address decides (a mapping is page-aligned, so
  // for open() this is the file offset). An empty tensor has no elements to align.
  if (t->nbytes != 0 && reinterpret_cast<uintptr_t>(data_ + t->offset) % elem != 0)
    throw FormatError(fmt::format("{}: tensor '{}' ({}) data at offset {} is not aligned to its element size {}",
                                  source_, name, t->st_dtype, t->offset, elem));
  std::vector<int64_t> shape = t->shape.empty() ? std::vector<int64_t>{1} : t->shape;
  // The mapping is read-only; Tensor's data pointer is non-const only because it also serves
  // writable buffers. Weight views are never written.
  return Tensor(*t->dtype, std::move(shape), const_cast<uint8_t*>(data_ + t->offset), owner_);
}

}  // namespace contrail
