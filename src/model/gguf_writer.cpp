// GGUF v3 writer. Values and tensors are validated when they are added (InvalidArgument naming
// the key or tensor), so serialize() cannot produce a file that GgufFile would reject.
// Layout: header, metadata in insertion order, tensor infos in insertion order, zero padding to
// the alignment, then each tensor's bytes padded to the alignment (as ggml's gguf writer does).
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>

#include "contrail/core/error.h"
#include "contrail/model/gguf.h"
#include "model/gguf_detail.h"

namespace contrail {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" as a little-endian u32
constexpr uint32_t kVersion = 3;
constexpr size_t kMaxKeyLength = 65535;
constexpr size_t kMaxTensorNameLength = 64;
constexpr const char* kAlignmentKey = "general.alignment";

using detail::gguf_fixed_size;
using detail::gguf_is_float;
using detail::gguf_is_signed;
using detail::gguf_is_unsigned;

// Inclusive value range of an integer type, as (min, max) in the widened representations.
std::pair<int64_t, uint64_t> int_range(GgufType t) {
  switch (t) {
    case GgufType::UINT8: return {0, 0xffu};
    case GgufType::UINT16: return {0, 0xffffu};
    case GgufType::UINT32: return {0, 0xffffffffu};
    case GgufType::UINT64: return {0, std::numeric_limits<uint64_t>::max()};
    case GgufType::INT8: return {-128, 127};
    case GgufType::INT16: return {-32768, 32767};
    case GgufType::INT32: return {std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()};
    case GgufType::INT64:
      return {std::numeric_limits<int64_t>::min(), static_cast<uint64_t>(std::numeric_limits<int64_t>::max())};
    default: return {0, 1};  // BOOL
  }
}

void check_int(const std::string& key, GgufType t, int64_t v) {
  const auto [lo, hi] = int_range(t);
  if (v < lo || (v > 0 && static_cast<uint64_t>(v) > hi))
    throw InvalidArgument(fmt::format("GgufWriter: key '{}': value {} does not fit in {}", key, v, gguf_type_name(t)));
}

// Throws InvalidArgument unless `v` holds exactly what its declared type says.
void check_value(const std::string& key, const GgufValue& v) {
  const auto bad = [&](const std::string& why) {
    return InvalidArgument(fmt::format("GgufWriter: key '{}' ({}): {}", key, gguf_type_name(v.type), why));
  };
  if (static_cast<uint32_t>(v.type) > static_cast<uint32_t>(GgufType::FLOAT64)) throw bad("unknown value type");
  if (v.type == GgufType::ARRAY) {
    if (static_cast<uint32_t>(v.elem_type) > static_cast<uint32_t>(GgufType::FLOAT64) ||
        v.elem_type == GgufType::ARRAY)
      throw bad("array element type must be a scalar type");
    const GgufType e = v.elem_type;
    if (e == GgufType::STRING) {
      uint64_t prev = 0;
      for (uint64_t end : v.string_ends) {
        if (end < prev || end > v.array_bytes.size()) throw bad("string_ends are not ascending offsets into array_bytes");
        prev = end;
      }
      if (prev != v.array_bytes.size()) throw bad("array_bytes holds bytes after the last string");
      return;
    }
    const size_t es = gguf_fixed_size(e);
    if (!v.string_ends.empty() || v.array_bytes.size() % es != 0)
      throw bad(fmt::format("array_bytes ({} bytes) is not a whole number of {}-byte {} elements", v.array_bytes.size(),
                            es, gguf_type_name(e)));
    // What the reader refuses: bools other than 0/1, u64 elements above INT64_MAX (int_at's range).
    if (e == GgufType::BOOL || e == GgufType::UINT64)
      for (size_t i = 0; i < v.array_size(); ++i) {
        if (e == GgufType::BOOL && v.array_bytes[i] > 1)
          throw InvalidArgument(fmt::format("GgufWriter: key '{}': element {} value {} does not fit in bool", key, i,
                                            v.array_bytes[i]));
        uint64_t u = 0;
        if (e == GgufType::UINT64) std::memcpy(&u, v.array_bytes.data() + 8 * i, 8);
        if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          throw InvalidArgument(fmt::format("GgufWriter: key '{}': element {} value {} exceeds the readable maximum {}",
                                            key, i, u, std::numeric_limits<int64_t>::max()));
      }
    return;
  }
  if (gguf_is_unsigned(v.type)) {
    const auto* u = std::get_if<uint64_t>(&v.scalar);
    if (!u) throw bad("scalar must hold a uint64_t");
    if (*u > int_range(v.type).second)
      throw InvalidArgument(fmt::format("GgufWriter: key '{}': value {} does not fit in {}", key, *u, gguf_type_name(v.type)));
  } else if (gguf_is_signed(v.type)) {
    const auto* i = std::get_if<int64_t>(&v.scalar);
    if (!i) throw bad("scalar must hold an int64_t");
    check_int(key, v.type, *i);
  } else if (gguf_is_float(v.type)) {
    if (!std::holds_alternative<double>(v.scalar)) throw bad("scalar must hold a double");
  } else if (v.type == GgufType::BOOL) {
    if (!std::holds_alternative<bool>(v.scalar)) throw bad("scalar must hold a bool");
  } else if (v.type == GgufType::STRING) {
    if (!std::holds_alternative<std::string>(v.scalar)) throw bad("scalar must hold a std::string");
  }
}

// Little-endian byte sink.
class Sink {
 public:
  explicit Sink(std::vector<uint8_t>& out) : out_(out) {}
  template <typename T>
  void put(T x) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &x, sizeof(T));
    out_.insert(out_.end(), b, b + sizeof(T));
  }
  void str(std::string_view s) {
    put<uint64_t>(s.size());
    out_.insert(out_.end(), s.begin(), s.end());
  }
  void pad(size_t alignment) { out_.resize(out_.size() + (alignment - out_.size() % alignment) % alignment, 0); }
  // One scalar of type t taken from its widened representation.
  void scalar(GgufType t, uint64_t bits, double f) {
    switch (t) {
      case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return put(static_cast<uint8_t>(bits));
      case GgufType::UINT16: case GgufType::INT16: return put(static_cast<uint16_t>(bits));
      case GgufType::UINT32: case GgufType::INT32: return put(static_cast<uint32_t>(bits));
      case GgufType::UINT64: case GgufType::INT64: return put(bits);
      case GgufType::FLOAT32: return put(static_cast<float>(f));
      case GgufType::FLOAT64: return put(f);
      case GgufType::STRING: case GgufType::ARRAY: break;
    }
  }
  void value(const GgufValue& v) {
    if (v.type == GgufType::ARRAY) {
      put(static_cast<uint32_t>(v.elem_type));
      put<uint64_t>(v.array_size());
      if (v.elem_type == GgufType::STRING) {
        for (size_t i = 0; i < v.array_size(); ++i) str(v.string_at(i));
      } else {
        out_.insert(out_.end(), v.array_bytes.begin(), v.array_bytes.end());  // already the file's encoding
      }
      return;
    }
    if (const auto* u = std::get_if<uint64_t>(&v.scalar)) return scalar(v.type, *u, 0);
    if (const auto* i = std::get_if<int64_t>(&v.scalar)) return scalar(v.type, static_cast<uint64_t>(*i), 0);
    if (const auto* d = std::get_if<double>(&v.scalar)) return scalar(v.type, 0, *d);
    if (const auto* b = std::get_if<bool>(&v.scalar)) return scalar(v.type, *b ? 1 : 0, 0);
    if (const auto* s = std::get_if<std::string>(&v.scalar)) return str(*s);
  }

 private:
  std::vector<uint8_t>& out_;
};

// Same rules as the reader: keys printable ASCII, tensor names free of control characters.
void check_name(const std::string& s, bool ascii_only, const char* what) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x20 || c == 0x7f || (ascii_only && c > 0x7e))
      throw InvalidArgument(fmt::format("GgufWriter: {} has byte {:#04x} at position {} (must be {})", what, c, i,
                                        ascii_only ? "printable ASCII" : "free of control characters"));
  }
}

[[noreturn]] void io_error(const std::string& path, const char* step, int err) {
  throw Error(fmt::format("{}: cannot write GGUF ({}): {}", path, step, std::strerror(err)));
}

}  // namespace

void GgufWriter::set(std::string key, GgufValue value) {
  if (key.empty() || key.size() > kMaxKeyLength)
    throw InvalidArgument(fmt::format("GgufWriter: key length {} outside [1, {}]", key.size(), kMaxKeyLength));
  check_name(key, true, "key");
  check_value(key, value);
  if (key == kAlignmentKey) {
    // The layout follows this key, so it must be a valid u32 power of two.
    const auto* u = std::get_if<uint64_t>(&value.scalar);
    if (value.type != GgufType::UINT32 || !u || *u == 0 || (*u & (*u - 1)) != 0)
      throw InvalidArgument(fmt::format("GgufWriter: {} must be a u32 power of two, got {}", kAlignmentKey,
                                        value.to_display()));
    alignment_ = static_cast<size_t>(*u);
  }
  for (GgufKV& kv : kv_)
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  kv_.push_back({std::move(key), std::move(value)});
}

void GgufWriter::set_string(std::string key, std::string v) {
  GgufValue g;
  g.type = GgufType::STRING;
  g.scalar = std::move(v);
  set(std::move(key), std::move(g));
}

void GgufWriter::set_u32(std::string key, uint32_t v) {
  GgufValue g;
  g.type = GgufType::UINT32;
  g.scalar = uint64_t{v};
  set(std::move(key), std::move(g));
}

void GgufWriter::set_i32(std::string key, int32_t v) {
  GgufValue g;
  g.type = GgufType::INT32;
  g.scalar = int64_t{v};
  set(std::move(key), std::move(g));
}

void GgufWriter::set_f32(std::string key, float v) {
  GgufValue g;
  g.type = GgufType::FLOAT32;
  g.scalar = double{v};
  set(std::move(key), std::move(g));
}

void GgufWriter::set_bool(std::string key, bool v) {
  GgufValue g;
  g.type = GgufType::BOOL;
  g.scalar = v;
  set(std::move(key), std::move(g));
}

void GgufWriter::set_string_array(std::string key, std::vector<std::string> v) {
  set(std::move(key), GgufValue::string_array(v));
}

void GgufWriter::set_f32_array(std::string key, const std::vector<float>& v) {
  set(std::move(key), GgufValue::float_array(GgufType::FLOAT32, std::vector<double>(v.begin(), v.end())));
}

void GgufWriter::set_i32_array(std::string key, const std::vector<int32_t>& v) {
  set(std::move(key), GgufValue::int_array(GgufType::INT32, std::vector<int64_t>(v.begin(), v.end())));
}

void GgufWriter::check_new_tensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                                  size_t nbytes) const {
  if (name.empty() || name.size() > kMaxTensorNameLength)
    throw InvalidArgument(
        fmt::format("GgufWriter: tensor name '{}' length {} outside [1, {}]", name, name.size(), kMaxTensorNameLength));
  check_name(name, false, "tensor name");
  for (const PendingTensor& t : tensors_)
    if (t.name == name) throw InvalidArgument(fmt::format("GgufWriter: duplicate tensor '{}'", name));
  if (shape.empty()) throw InvalidArgument(fmt::format("GgufWriter: tensor '{}' has no dims", name));
  for (int64_t d : shape)
    if (d < 1) throw InvalidArgument(fmt::format("GgufWriter: tensor '{}' has dim {} (must be >= 1)", name, d));
  const Tensor probe(dtype, shape, nullptr);  // validates dims, block size and overflow
  if (probe.nbytes() != nbytes)
    throw InvalidArgument(fmt::format("GgufWriter: tensor '{}' {} {} needs {} bytes, got {}", name,
                                      dtype_name(dtype), probe.shape_str(), probe.nbytes(), nbytes));
}

void GgufWriter::add_tensor(std::string name, DType dtype, std::vector<int64_t> shape, const void* data,
                            size_t nbytes) {
  check_new_tensor(name, dtype, shape, nbytes);
  const auto* p = static_cast<const uint8_t*>(data);
  tensors_.push_back({std::move(name), dtype, std::move(shape), std::vector<uint8_t>(p, p + nbytes), nbytes, {}});
}

void GgufWriter::add_tensor_lazy(std::string name, DType dtype, std::vector<int64_t> shape, size_t nbytes,
                                 TensorProducer produce) {
  check_new_tensor(name, dtype, shape, nbytes);
  if (!produce) throw InvalidArgument(fmt::format("GgufWriter: tensor '{}' has no producer", name));
  tensors_.push_back({std::move(name), dtype, std::move(shape), {}, nbytes, std::move(produce)});
}

void GgufWriter::set_alignment(size_t a) {
  if (a == 0 || (a & (a - 1)) != 0 || a > std::numeric_limits<uint32_t>::max())
    throw InvalidArgument(fmt::format("GgufWriter: alignment {} is not a u32 power of two", a));
  set_u32(kAlignmentKey, static_cast<uint32_t>(a));
}

std::vector<uint8_t> GgufWriter::header() const {
  std::vector<uint8_t> out;
  Sink s(out);
  s.put(kMagic);
  s.put(kVersion);
  s.put<uint64_t>(tensors_.size());
  s.put<uint64_t>(kv_.size());
  for (const GgufKV& kv : kv_) {
    s.str(kv.key);
    s.put(static_cast<uint32_t>(kv.value.type));
    s.value(kv.value);
  }
  uint64_t rel = 0;  // offset of the next tensor inside the data section
  for (const PendingTensor& t : tensors_) {
    s.str(t.name);
    s.put(static_cast<uint32_t>(t.shape.size()));
    for (size_t d = t.shape.size(); d-- > 0;) s.put(static_cast<uint64_t>(t.shape[d]));  // innermost first
    s.put(static_cast<uint32_t>(t.dtype));
    s.put(rel);
    rel += t.nbytes;
    rel += (alignment_ - rel % alignment_) % alignment_;
  }
  s.pad(alignment_);
  return out;
}

std::vector<uint8_t> GgufWriter::serialize() const {
  std::vector<uint8_t> out = header();
  Sink s(out);
  for (const PendingTensor& t : tensors_) {
    const size_t at = out.size();
    if (t.produce) {
      out.resize(at + t.nbytes);
      t.produce(out.data() + at);
    } else {
      out.insert(out.end(), t.bytes.begin(), t.bytes.end());
    }
    s.pad(alignment_);
  }
  return out;
}

void GgufWriter::write(const std::string& path) const {

  // Temp file beside the target so that rename() is atomic (same file system).
  std::random_device rd;
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    tmp = fmt::format("{}.tmp.{}.{:08x}", path, ::getpid(), rd());
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && (errno != EEXIST || attempt == 16)) io_error(path, "create temp file", errno);
  }
  const auto fail = [&](const char* step) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    fd = -1;
    ::unlink(tmp.c_str());
    io_error(path, step, err);
  };
  auto put = [&](const uint8_t* p, size_t size) {
    for (size_t done = 0; done < size;) {
      const ssize_t n = ::write(fd, p + done, size - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (n == 0) errno = EIO;
        fail("write");
      }
      done += static_cast<size_t>(n);
    }
  };
  try {
    const std::vector<uint8_t> head = header();
    put(head.data(), head.size());
    uint64_t offset = 0;  // inside the data section
    std::vector<uint8_t> buf;
    static const uint8_t zeros[64] = {};
    for (const PendingTensor& t : tensors_) {
      if (t.produce) {
        buf.assign(t.nbytes, 0);
        t.produce(buf.data());
        put(buf.data(), buf.size());
      } else {
        put(t.bytes.data(), t.bytes.size());
      }
      offset += t.nbytes;
      const size_t pad = (alignment_ - offset % alignment_) % alignment_;
      for (size_t left = pad; left > 0;) {
        const size_t n = std::min(left, sizeof zeros);
        put(zeros, n);
        left -= n;
      }
      offset += pad;
    }
  } catch (...) {  // a producer failed (or a write): no partial file
    if (fd >= 0) ::close(fd);
    fd = -1;
    ::unlink(tmp.c_str());
    throw;
  }
  if (::fsync(fd) != 0) fail("fsync");
  const int rc = ::close(fd);
  fd = -1;
  if (rc != 0) fail("close");
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename");
  // Make the rename itself durable. Best effort: the new file is already in place.
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace contrail
