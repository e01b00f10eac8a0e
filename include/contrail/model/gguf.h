// GGUF v2/v3 reader (and writer). The file is memory-mapped; tensors are views into the mapping.
//
// Contract of GgufFile::open: validates everything it reads and throws FormatError naming the file,
// the field and the offending value for: bad magic, unsupported version, truncation anywhere,
// absurd counts (n_tensors, n_kv, array lengths, string lengths beyond what the file can hold;
// n_kv above 65536),
// unknown value types, unknown tensor types, n_dims > 4 or dims <= 0 / overflowing, rows not a
// multiple of the block size, duplicate tensor names, alignment not a power of two, tensor data
// offsets misaligned or extending beyond the end of the file. Never reads out of bounds.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "contrail/core/mapped_file.h"
#include "contrail/core/tensor.h"

namespace contrail {

enum class GgufType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
std::string_view gguf_type_name(GgufType t);

// One metadata value. Scalars keep their declared type; integer scalars are stored widened
// (unsigned types as uint64_t, signed as int64_t), floats as double.
//
// Arrays (one element type; nested arrays are rejected as unsupported) are stored compactly, as
// the file encodes them, and converted on access, so a value never takes more memory than its
// encoding in the file: for a fixed-size element type `array_bytes` holds the little-endian
// elements back to back (array_size() * element size bytes; a bool is one byte, 0 or 1); for an
// array of strings `array_bytes` holds the strings' bytes concatenated and `string_ends[i]` is the
// end offset of string i in it (string i spans [string_ends[i-1], string_ends[i]), 0 for i = 0).
// Build arrays with int_array / float_array / string_array, which check the values.
struct GgufValue {
  GgufType type = GgufType::UINT8;
  GgufType elem_type = GgufType::UINT8;  // for ARRAY
  std::variant<std::monostate, uint64_t, int64_t, double, bool, std::string> scalar;
  std::vector<uint8_t> array_bytes;    // ARRAY payload, see above
  std::vector<uint64_t> string_ends;   // ARRAY of STRING: (array_size()) end offsets into array_bytes

  // Elements of an ARRAY (0 for a scalar).
  size_t array_size() const;
  // Heap bytes the array payload takes (array_bytes plus string_ends).
  size_t array_payload_bytes() const;
  // Element i, converted; throw InvalidArgument when this is not an array of a matching element
  // type (int_at: integer types and BOOL, float_at: FLOAT32/FLOAT64, string_at: STRING) or i is out
  // of range. int_at of a UINT64 element above INT64_MAX throws too (the reader rejects those).
  int64_t int_at(size_t i) const;
  double float_at(size_t i) const;
  std::string_view string_at(size_t i) const;
  // Every element, converted (same rules as the *_at accessors).
  std::vector<int64_t> ints() const;
  std::vector<double> floats() const;
  std::vector<std::string> strings() const;

  // Array builders. Throw InvalidArgument when elem is not of the builder's kind or a value does
  // not fit elem (int_array: integer types and BOOL, with UINT64 values <= INT64_MAX; float_array:
  // FLOAT32/FLOAT64, FLOAT32 values are rounded to float).
  static GgufValue int_array(GgufType elem, const std::vector<int64_t>& values);
  static GgufValue float_array(GgufType elem, const std::vector<double>& values);
  static GgufValue string_array(const std::vector<std::string>& values);

  std::string to_display(size_t max_items = 8) const;  // human-readable, arrays abbreviated
};

struct GgufKV {
  std::string key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // row-major, outermost first (GGUF ne[] reversed)
  uint64_t offset = 0;         // absolute byte offset in the file
  size_t nbytes = 0;
};

class GgufFile {
 public:
  static std::shared_ptr<GgufFile> open(const std::string& path);
  // Parses an in-memory image (used by tests and fuzzers); `mapping` keeps the bytes alive.
  static std::shared_ptr<GgufFile> parse(std::shared_ptr<const void> owner, const uint8_t* data, size_t size,
                                         std::string source);

  const std::string& path() const { return source_; }
  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  size_t data_offset() const { return data_offset_; }

  const std::vector<GgufKV>& metadata() const { return kv_; }
  const GgufValue* find(std::string_view key) const;
  // Typed getters: throw FormatError naming the key when missing (no default) or of the wrong type.
  std::string get_string(std::string_view key) const;
  std::optional<std::string> get_string_opt(std::string_view key) const;
  int64_t get_int(std::string_view key) const;  // any integer type; uint64 > INT64_MAX rejected
  int64_t get_int(std::string_view key, int64_t def) const;
  double get_float(std::string_view key) const;  // float or integer types
  double get_float(std::string_view key, double def) const;
  bool get_bool(std::string_view key, bool def) const;
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<float> get_float_array(std::string_view key) const;
  std::vector<int64_t> get_int_array(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  // View of the tensor's bytes in the mapping; throws FormatError if the name is absent.
  Tensor tensor(std::string_view name) const;

 private:
  GgufFile() = default;
  void parse_all();
  std::shared_ptr<const void> owner_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string source_;
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  size_t data_offset_ = 0;
  std::vector<GgufKV> kv_;
  std::vector<GgufTensorInfo> tensors_;
};

// Writes a GGUF v3 file atomically (temp file in the same directory, fsync, rename).
class GgufWriter {
 public:
  void set(std::string key, GgufValue value);  // replaces an existing key
  void set_string(std::string key, std::string v);
  void set_u32(std::string key, uint32_t v);
  void set_i32(std::string key, int32_t v);
  void set_f32(std::string key, float v);
  void set_bool(std::string key, bool v);
  void set_string_array(std::string key, std::vector<std::string> v);
  void set_f32_array(std::string key, const std::vector<float>& v);
  void set_i32_array(std::string key, const std::vector<int32_t>& v);
  // shape row-major (outermost first); `data` holds row_bytes * rows bytes, copied at add time.
  void add_tensor(std::string name, DType dtype, std::vector<int64_t> shape, const void* data, size_t nbytes);
  // A tensor whose nbytes bytes `produce` writes into the buffer it is given, called once per
  // serialize()/write() (in tensor order), so a large model is written one tensor at a time.
  // Exceptions from `produce` propagate; write() then leaves no file.
  using TensorProducer = std::function<void(uint8_t* dst)>;
  void add_tensor_lazy(std::string name, DType dtype, std::vector<int64_t> shape, size_t nbytes,
                       TensorProducer produce);
  void set_alignment(size_t a);
  std::vector<uint8_t> serialize() const;  // the full file image
  // Streams the file: header and metadata, then each tensor (producers run here, one at a time).
  void write(const std::string& path) const;

 private:
  struct PendingTensor {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;  // empty for a lazy tensor
    size_t nbytes = 0;
    TensorProducer produce;      // set for a lazy tensor
  };
  void check_new_tensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape, size_t nbytes) const;
  std::vector<uint8_t> header() const;  // everything before the tensor data, padded
  std::vector<GgufKV> kv_;
  std::vector<PendingTensor> tensors_;
  size_t alignment_ = 32;
};

}  // namespace contrail
