// GGUF reader: parses and validates the header, metadata and tensor infos of a memory-mapped
// image (layout: ggml docs/gguf.md). Tensor data is never copied; views point into the mapping.
//
// Hostile-input policy: every count read from the file is checked against the bytes that remain
// before anything is allocated for it, so a file can only make the parser allocate memory in
// proportion to its own size; every read goes through the bounds-checked ByteReader.
#include <fmt/format.h>

#include <cstring>
#include <limits>
#include <unordered_set>

#include "contrail/core/error.h"
#include "contrail/model/gguf.h"
#include "model/gguf_detail.h"

namespace contrail {
namespace {

constexpr uint32_t kMinVersion = 2, kMaxVersion = 3;
constexpr uint64_t kMaxKeyLength = 65535;   // gguf.md: keys are at most 2^16-1 bytes
constexpr uint64_t kMaxTensorNameLength = 64;  // gguf.md: tensor names are at most 64 bytes
constexpr uint32_t kMaxDims = 4;
constexpr uint64_t kMaxDim = uint64_t(1) << 40;  // exclusive bound on one dimension
constexpr uint64_t kDefaultAlignment = 32;
// Smallest encodings, used to bound counts before reading: a key-value pair is a key length (8),
// a value type (4) and at least one value byte; a tensor info is a name length (8), n_dims (4),
// one dim (8), a type (4) and an offset (8).
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;
// Each key-value pair costs ~200 bytes of bookkeeping (GgufKV, the duplicate check) for as little
// as 14 bytes of file, so the count is capped: real files have tens of keys (arrays such as the
// vocabulary are one key each), and 65536 keys bound that overhead to ~13 MB.
constexpr uint64_t kMaxKv = uint64_t(1) << 16;
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;

using detail::gguf_fixed_size;
using detail::gguf_is_float;
using detail::gguf_is_integer;
using detail::gguf_valid_type;

// Alignment every element/block of a tensor can count on when the tensor starts at a multiple of
// it: the largest power of two dividing the block size, at most 8.
size_t element_alignment(size_t type_size) {
  size_t a = 1;
  while (a < 8 && type_size % (a * 2) == 0) a *= 2;
  return a;
}

std::string escape_bytes(const uint8_t* p, size_t n) { return detail::gguf_escape_bytes(p, n); }

// Parser state shared by the helpers below.
class Parser {
 public:
  Parser(const uint8_t* data, size_t size, const std::string& source) : r_(data, size, source), src_(source) {}
  ByteReader& reader() { return r_; }

  // A GGUF string: u64 length + bytes. `what` names the field for error messages.
  std::string string(uint64_t max_len, const std::string& what) {
    const uint64_t len = r_.u64((what + " length").c_str());
    if (len > r_.remaining())
      throw FormatError(fmt::format("{}: {} length {} at offset {} exceeds the {} bytes left in the file (file size {})",
                                    src_, what, len, r_.offset() - 8, r_.remaining(), r_.size()));
    if (len > max_len)
      throw FormatError(fmt::format("{}: {} length {} exceeds the limit of {} bytes", src_, what, len, max_len));
    const uint8_t* p = r_.bytes(static_cast<size_t>(len), what.c_str());
    return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(len));
  }

  // Keys and tensor names end up in error messages and lookups: keys must be printable ASCII
  // (gguf.md), tensor names free of control characters.
  std::string name(uint64_t max_len, bool ascii_only, const std::string& what) {
    std::string s = string(max_len, what);
    for (size_t i = 0; i < s.size(); ++i) {
      const auto c = static_cast<uint8_t>(s[i]);
      if (c < 0x20 || c == 0x7f || (ascii_only && c > 0x7e))
        throw FormatError(fmt::format("{}: {} \"{}\" has byte {:#04x} at position {} (must be {})", src_, what,
                                      escape_bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size()), c, i,
                                      ascii_only ? "printable ASCII" : "free of control characters"));
    }
    return s;
  }

  // One scalar value of type t.
  void scalar(GgufType t, GgufValue& v, const std::string& what) {
    const char* w = what.c_str();
    switch (t) {
      case GgufType::UINT8: v.scalar = uint64_t{r_.u8(w)}; return;
      case GgufType::UINT16: v.scalar = uint64_t{r_.u16(w)}; return;
      case GgufType::UINT32: v.scalar = uint64_t{r_.u32(w)}; return;
      case GgufType::UINT64: v.scalar = r_.u64(w); return;
      case GgufType::INT8: v.scalar = int64_t{static_cast<int8_t>(r_.u8(w))}; return;
      case GgufType::INT16: v.scalar = int64_t{static_cast<int16_t>(r_.u16(w))}; return;
      case GgufType::INT32: v.scalar = int64_t{r_.i32(w)}; return;
      case GgufType::INT64: v.scalar = r_.i64(w); return;
      case GgufType::FLOAT32: v.scalar = double{r_.f32(w)}; return;
      case GgufType::FLOAT64: v.scalar = r_.f64(w); return;
      case GgufType::BOOL: {
        const uint8_t b = r_.u8(w);
        check_bool(b, what);
        v.scalar = b == 1;
        return;
      }
      case GgufType::STRING: v.scalar = string(std::numeric_limits<uint64_t>::max(), what); return;
      case GgufType::ARRAY: break;
    }
    throw FormatError(fmt::format("{}: {} has unexpected type {}", src_, what, static_cast<uint32_t>(t)));
  }

  GgufValue value(uint32_t type_id, const std::string& key) {
    const std::string what = fmt::format("value of key '{}'", key);
    if (!gguf_valid_type(type_id))
      throw FormatError(fmt::format("{}: key '{}' has unknown value type {} (valid types are 0..12)", src_, key, type_id));
    GgufValue v;
    v.type = static_cast<GgufType>(type_id);
    if (v.type != GgufType::ARRAY) {
      scalar(v.type, v, what);
      return v;
    }
    const uint32_t elem_id = r_.u32((what + " array element type").c_str());
    if (elem_id == static_cast<uint32_t>(GgufType::ARRAY))
      throw FormatError(fmt::format("{}: key '{}' is an array of arrays (nested arrays are not supported)", src_, key));
    if (!gguf_valid_type(elem_id))
      throw FormatError(
          fmt::format("{}: key '{}' is an array of unknown value type {} (valid types are 0..12)", src_, key, elem_id));
    v.elem_type = static_cast<GgufType>(elem_id);
    const uint64_t n = r_.u64((what + " array length").c_str());
    // Every element takes at least its fixed size, or 8 bytes (its length) for a string.
    const size_t min_elem = v.elem_type == GgufType::STRING ? 8 : gguf_fixed_size(v.elem_type);
    if (n > r_.remaining() / min_elem)
      throw FormatError(fmt::format(
          "{}: key '{}' declares an array of {} {} values, which cannot fit in the {} bytes left in the file "
          "(file size {})",
          src_, key, n, gguf_type_name(v.elem_type), r_.remaining(), r_.size()));
    const std::string elem_what = what + " array element";
    if (v.elem_type == GgufType::STRING) {
      string_array(v, static_cast<size_t>(n), elem_what);
    } else {
      // Kept as encoded (GgufValue's compact form); n * min_elem <= remaining, so no overflow.
      const size_t nbytes = static_cast<size_t>(n) * min_elem;
      const uint8_t* p = r_.bytes(nbytes, elem_what.c_str());
      v.array_bytes.assign(p, p + nbytes);
      check_array_elements(v, elem_what);
    }
    return v;
  }

 private:
  void check_bool(uint8_t b, const std::string& what) const {
    if (b > 1) throw FormatError(fmt::format("{}: {} is a bool with byte value {} (must be 0 or 1)", src_, what, b));
  }

  // Values GgufValue cannot hand out: bools other than 0/1 and u64 elements above INT64_MAX
  // (int_at returns int64_t).
  void check_array_elements(const GgufValue& v, const std::string& what) const {
    const size_t n = v.array_size();
    if (v.elem_type == GgufType::BOOL) {
      for (size_t i = 0; i < n; ++i) check_bool(v.array_bytes[i], what);
    } else if (v.elem_type == GgufType::UINT64) {
      for (size_t i = 0; i < n; ++i) {
        uint64_t x;
        std::memcpy(&x, v.array_bytes.data() + 8 * i, 8);
        if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          throw FormatError(fmt::format("{}: {} {} exceeds the supported maximum {} (element #{})", src_, what, x,
                                        std::numeric_limits<int64_t>::max(), i));
      }
    }
  }

  // n strings (u64 length + bytes each) into the blob + end offsets of GgufValue. The caller has
  // checked that n length fields fit in the file. Two passes: the first validates the lengths and
  // sums them, so the blob is allocated once at its exact size.
  void string_array(GgufValue& v, size_t n, const std::string& what) {
    const std::string len_what = what + " length";  // built once: n may be in the millions
    const size_t start = r_.offset();
    size_t total = 0;
    for (size_t i = 0; i < n; ++i) {
      const uint64_t len = r_.u64(len_what.c_str());
      if (len > r_.remaining())
        throw FormatError(fmt::format("{}: {} length {} at offset {} exceeds the {} bytes left in the file (file size {})",
                                      src_, what, len, r_.offset() - 8, r_.remaining(), r_.size()));
      r_.skip(static_cast<size_t>(len), what.c_str());
      total += static_cast<size_t>(len);  // <= the file size
    }
    r_.seek(start, what.c_str());
    v.array_bytes.reserve(total);
    v.string_ends.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const size_t len = static_cast<size_t>(r_.u64(len_what.c_str()));
      const uint8_t* p = r_.bytes(len, what.c_str());
      v.array_bytes.insert(v.array_bytes.end(), p, p + len);
      v.string_ends.push_back(v.array_bytes.size());
    }
  }

 private:
  ByteReader r_;
  const std::string& src_;
};

}  // namespace

std::string_view gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::UINT8: return "u8";
    case GgufType::INT8: return "i8";
    case GgufType::UINT16: return "u16";
    case GgufType::INT16: return "i16";
    case GgufType::UINT32: return "u32";
    case GgufType::INT32: return "i32";
    case GgufType::FLOAT32: return "f32";
    case GgufType::BOOL: return "bool";
    case GgufType::STRING: return "string";
    case GgufType::ARRAY: return "array";
    case GgufType::UINT64: return "u64";
    case GgufType::INT64: return "i64";
    case GgufType::FLOAT64: return "f64";
  }
  return "unknown";
}

std::shared_ptr<GgufFile> GgufFile::open(const std::string& path) {
  std::shared_ptr<MappedFile> file = MappedFile::open(path);
  const uint8_t* data = file->data();
  const size_t size = file->size();
  return parse(std::move(file), data, size, path);
}

std::shared_ptr<GgufFile> GgufFile::parse(std::shared_ptr<const void> owner, const uint8_t* data, size_t size,
                                          std::string source) {
  std::shared_ptr<GgufFile> f(new GgufFile());
  f->owner_ = std::move(owner);
  f->data_ = data;
  f->size_ = size;
  f->source_ = std::move(source);
  f->parse_all();
  return f;
}

void GgufFile::parse_all() {
  Parser p(data_, size_, source_);
  ByteReader& r = p.reader();
  const std::string& src = source_;

  // ---- header
  const uint8_t* magic = r.bytes(4, "magic");
  if (std::memcmp(magic, "GGUF", 4) != 0)
    throw FormatError(fmt::format("{}: bad magic \"{}\" (expected \"GGUF\"): not a GGUF file", src, escape_bytes(magic, 4)));
  version_ = r.u32("version");
  if (version_ < kMinVersion || version_ > kMaxVersion) {
    const uint32_t swapped = __builtin_bswap32(version_);
    if (swapped >= kMinVersion && swapped <= kMaxVersion)
      throw FormatError(fmt::format("{}: GGUF version field {:#x} looks big-endian; only little-endian GGUF is supported",
                                    src, version_));
    throw FormatError(fmt::format("{}: GGUF version {} is not supported (supported versions: {}..{})", src, version_,
                                  kMinVersion, kMaxVersion));
  }
  const uint64_t n_tensors = r.u64("n_tensors");
  const uint64_t n_kv = r.u64("n_kv");
  if (n_kv > r.remaining() / kMinKvBytes)
    throw FormatError(fmt::format("{}: n_kv {} cannot fit in the {} bytes after the header (at least {} bytes each; "
                                  "file size {})",
                                  src, n_kv, r.remaining(), kMinKvBytes, size_));
  if (n_kv > kMaxKv)
    throw FormatError(fmt::format("{}: n_kv {} exceeds the supported maximum of {} metadata keys", src, n_kv, kMaxKv));
  if (n_tensors > r.remaining() / kMinTensorInfoBytes)
    throw FormatError(fmt::format("{}: n_tensors {} cannot fit in the {} bytes after the header (at least {} bytes "
                                  "each; file size {})",
                                  src, n_tensors, r.remaining(), kMinTensorInfoBytes, size_));

  // ---- metadata
  std::unordered_set<std::string> seen;
  kv_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    GgufKV kv;
    kv.key = p.name(kMaxKeyLength, true, fmt::format("key #{} name", i));
    if (!seen.insert(kv.key).second) throw FormatError(fmt::format("{}: duplicate key '{}' (key #{})", src, kv.key, i));
    const uint32_t type = r.u32(fmt::format("value type of key '{}'", kv.key).c_str());
    kv.value = p.value(type, kv.key);
    kv_.push_back(std::move(kv));
  }

  alignment_ = kDefaultAlignment;
  if (const GgufValue* a = find("general.alignment")) {
    if (a->type == GgufType::ARRAY || !gguf_is_integer(a->type))
      throw FormatError(fmt::format("{}: key 'general.alignment' has type {}, expected an integer", src,
                                    gguf_type_name(a->type)));
    const auto* u = std::get_if<uint64_t>(&a->scalar);
    const auto* s = std::get_if<int64_t>(&a->scalar);
    const uint64_t align = u ? *u : (*s > 0 ? static_cast<uint64_t>(*s) : 0);
    if (align == 0 || (align & (align - 1)) != 0)
      throw FormatError(fmt::format("{}: general.alignment {} is not a power of two", src, a->to_display()));
    alignment_ = static_cast<size_t>(align);
  }

  // ---- tensor infos (offsets relative to the data section until it is located)
  std::unordered_set<std::string> names;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = p.name(kMaxTensorNameLength, false, fmt::format("tensor #{} name", i));
    if (!names.insert(t.name).second)
      throw FormatError(fmt::format("{}: duplicate tensor name '{}' (tensor #{})", src, t.name, i));
    const std::string what = fmt::format("tensor '{}'", t.name);
    const uint32_t n_dims = r.u32((what + " n_dims").c_str());
    if (n_dims < 1 || n_dims > kMaxDims)
      throw FormatError(fmt::format("{}: {} has n_dims {} (supported: 1..{})", src, what, n_dims, kMaxDims));
    uint64_t ne[kMaxDims] = {};  // GGUF order: innermost first
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      ne[d] = r.u64((what + " dims").c_str());
      if (ne[d] < 1 || ne[d] >= kMaxDim)
        throw FormatError(fmt::format("{}: {} dim {} is {} (must be in [1, 2^40))", src, what, d, ne[d]));
      if (numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / ne[d])
        throw FormatError(fmt::format("{}: {} element count overflows int64 at dim {}", src, what, d));
      numel *= ne[d];
    }
    const uint32_t type = r.u32((what + " type").c_str());
    const DTypeTraits* tr = dtype_traits_or_null(type);
    if (!tr) throw FormatError(fmt::format("{}: {} has unknown tensor type {}", src, what, type));
    t.dtype = static_cast<DType>(type);
    if (ne[0] % static_cast<uint64_t>(tr->block_size) != 0)
      throw FormatError(fmt::format("{}: {} row of {} elements is not a multiple of the {} block size {}", src, what,
                                    ne[0], tr->name, tr->block_size));
    const uint64_t blocks = numel / static_cast<uint64_t>(tr->block_size);
    if (blocks > std::numeric_limits<uint64_t>::max() / tr->type_size)
      throw FormatError(fmt::format("{}: {} byte size overflows ({} elements of {})", src, what, numel, tr->name));
    t.nbytes = static_cast<size_t>(blocks * tr->type_size);
    for (uint32_t d = n_dims; d-- > 0;) t.shape.push_back(static_cast<int64_t>(ne[d]));
    t.offset = r.u64((what + " data offset").c_str());
    if (t.offset % alignment_ != 0)
      throw FormatError(fmt::format("{}: {} data offset {} is misaligned (not a multiple of the alignment {})", src,
                                    what, t.offset, alignment_));
    tensors_.push_back(std::move(t));
  }

  // ---- data section: starts at the next multiple of the alignment
  const size_t end_of_infos = r.offset();
  const size_t pad = (alignment_ - end_of_infos % alignment_) % alignment_;
  if (pad > std::numeric_limits<size_t>::max() - end_of_infos)
    throw FormatError(fmt::format("{}: data section offset overflows (alignment {})", src, alignment_));
  data_offset_ = end_of_infos + pad;
  for (GgufTensorInfo& t : tensors_) {
    const uint64_t rel = t.offset;
    if (data_offset_ > size_ || rel > size_ - data_offset_ || t.nbytes > size_ - data_offset_ - rel)
      throw FormatError(fmt::format("{}: tensor '{}' data [offset {} + {}, {} bytes] extends beyond the file size {}",
                                    src, t.name, data_offset_, rel, t.nbytes, size_));
    t.offset = data_offset_ + rel;
    // A general.alignment below the element alignment (e.g. 1) could leave f32 data at an odd
    // address; kernels may rely on elements being naturally aligned (the mapping itself is
    // page-aligned, so the file offset decides).
    const size_t elem_align = element_alignment(dtype_traits(t.dtype).type_size);
    if (t.offset % elem_align != 0)
      throw FormatError(fmt::format("{}: tensor '{}' ({}) data offset {} is not a multiple of its element alignment {}",
                                    src, t.name, dtype_name(t.dtype), t.offset, elem_align));
  }
}

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const GgufKV& kv : kv_)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

namespace {

[[noreturn]] void wrong_type(const std::string& src, std::string_view key, const GgufValue& v, const char* expected) {
  const std::string have = v.type == GgufType::ARRAY ? fmt::format("array of {}", gguf_type_name(v.elem_type))
                                                     : std::string(gguf_type_name(v.type));
  throw FormatError(fmt::format("{}: key '{}' has type {}, expected {}", src, key, have, expected));
}

[[noreturn]] void missing(const std::string& src, std::string_view key) {
  throw FormatError(fmt::format("{}: required key '{}' is missing", src, key));
}

int64_t as_int(const std::string& src, std::string_view key, const GgufValue& v) {
  if (v.type == GgufType::ARRAY || !gguf_is_integer(v.type)) wrong_type(src, key, v, "an integer");
  if (const auto* u = std::get_if<uint64_t>(&v.scalar)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw FormatError(fmt::format("{}: key '{}' value {} exceeds the supported maximum {}", src, key, *u,
                                    std::numeric_limits<int64_t>::max()));
    return static_cast<int64_t>(*u);
  }
  return std::get<int64_t>(v.scalar);
}

double as_float(const std::string& src, std::string_view key, const GgufValue& v) {
  if (v.type != GgufType::ARRAY && gguf_is_float(v.type)) return std::get<double>(v.scalar);
  if (v.type != GgufType::ARRAY && gguf_is_integer(v.type)) {
    if (const auto* u = std::get_if<uint64_t>(&v.scalar)) return static_cast<double>(*u);
    return static_cast<double>(std::get<int64_t>(v.scalar));
  }
  wrong_type(src, key, v, "a number");
}

const GgufValue& array_of(const std::string& src, std::string_view key, const GgufValue* v, bool (*ok)(GgufType),
                          const char* expected) {
  if (!v) missing(src, key);
  if (v->type != GgufType::ARRAY || !ok(v->elem_type)) wrong_type(src, key, *v, expected);
  return *v;
}

}  // namespace

std::string GgufFile::get_string(std::string_view key) const {
  std::optional<std::string> s = get_string_opt(key);
  if (!s) missing(source_, key);
  return *s;
}

std::optional<std::string> GgufFile::get_string_opt(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::STRING) wrong_type(source_, key, *v, "a string");
  return std::get<std::string>(v->scalar);
}

int64_t GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) missing(source_, key);
  return as_int(source_, key, *v);
}

int64_t GgufFile::get_int(std::string_view key, int64_t def) const {
  const GgufValue* v = find(key);
  return v ? as_int(source_, key, *v) : def;
}

double GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) missing(source_, key);
  return as_float(source_, key, *v);
}

double GgufFile::get_float(std::string_view key, double def) const {
  const GgufValue* v = find(key);
  return v ? as_float(source_, key, *v) : def;
}

bool GgufFile::get_bool(std::string_view key, bool def) const {
  const GgufValue* v = find(key);
  if (!v) return def;
  if (v->type != GgufType::BOOL) wrong_type(source_, key, *v, "a bool");
  return std::get<bool>(v->scalar);
}

std::vector<std::string> GgufFile::get_string_array(std::string_view key) const {
  return array_of(source_, key, find(key), [](GgufType t) { return t == GgufType::STRING; }, "an array of strings")
      .strings();
}

std::vector<float> GgufFile::get_float_array(std::string_view key) const {
  const GgufValue& v = array_of(
      source_, key, find(key), [](GgufType t) { return gguf_is_float(t) || gguf_is_integer(t); }, "an array of numbers");
  std::vector<float> out(v.array_size());
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = gguf_is_float(v.elem_type) ? static_cast<float>(v.float_at(i)) : static_cast<float>(v.int_at(i));
  return out;
}

std::vector<int64_t> GgufFile::get_int_array(std::string_view key) const {
  return array_of(
             source_, key, find(key), [](GgufType t) { return gguf_is_integer(t) || t == GgufType::BOOL; },
             "an array of integers")
      .ints();
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  for (const GgufTensorInfo& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

Tensor GgufFile::tensor(std::string_view name) const {
  const GgufTensorInfo* t = find_tensor(name);
  if (!t) throw FormatError(fmt::format("{}: tensor '{}' not found", source_, name));
  // The mapping is read-only; Tensor's data pointer is non-const only because it also serves
  // writable buffers. Weight views are never written.
  return Tensor(t->dtype, t->shape, const_cast<uint8_t*>(data_ + t->offset), owner_);
}

}  // namespace contrail
