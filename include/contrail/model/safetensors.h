// Hugging Face safetensors reader (single file; sharded *.index.json checkpoints are handled
// elsewhere). The file is memory-mapped; tensors are views into the mapping, never copies.
//
// Layout: u64 little-endian header length N, N bytes of UTF-8 JSON, then the data region. The JSON
// is an object mapping tensor names to {"dtype": str, "shape": [uint...], "data_offsets": [begin,
// end]} (offsets relative to the data region), plus an optional "__metadata__": {str: str}.
//
// Contract of SafetensorsFile::open / parse: validates everything and throws FormatError naming the
// file, the field and the offending value for: a file shorter than the 8-byte length field, a
// header length above kMaxHeaderBytes or beyond the file, JSON that is invalid (including invalid
// UTF-8), nested deeper than the format allows, not an object, or with a duplicate key at any level;
// a "__metadata__" that is not an object of strings; a tensor entry that is not an object, lacks or
// has an unknown field, or has a field of the wrong type; an empty tensor name or one containing
// control characters; an unknown or unsupported dtype; a shape with a negative, non-integer or
// overflowing dimension; data offsets that are not two non-negative integers, have begin > end,
// extend past the data region, disagree with numel * element size, or overlap another tensor's
// (non-empty) range. Never reads out of bounds; memory allocated is proportional to the header size.
// Gaps between tensors and unused bytes at the end of the data region are accepted.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "contrail/core/tensor.h"

namespace contrail {

class SafetensorsFile {
 public:
  // Upper bound on the JSON header (the reference implementation uses the same 100 MB limit).
  static constexpr uint64_t kMaxHeaderBytes = 100'000'000;

  struct TensorInfo {
    std::string name;
    std::string st_dtype;        // the file's dtype string: "F32", "BF16", "U8", "BOOL", ...
    std::optional<DType> dtype;  // matching DType (F32 F16 BF16 F64 I8 I16 I32 I64), else nullopt
    std::vector<int64_t> shape;  // row-major, outermost first; empty for a scalar; dims may be 0
    size_t offset = 0;           // absolute byte offset in the file
    size_t nbytes = 0;           // numel * element size == data_offsets[1] - data_offsets[0]
  };

  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  // Parses an in-memory image (used by tests and fuzzers); `owner` keeps the bytes alive and is
  // shared by every tensor view.
  static std::shared_ptr<SafetensorsFile> parse(std::shared_ptr<const void> owner, const uint8_t* data, size_t size,
                                                std::string source);

  const std::string& path() const { return source_; }
  size_t data_offset() const { return data_offset_; }  // 8 + header length: start of the data region

  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Sorted by data offset (file order), ties by name.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(std::string_view name) const;  // nullptr if absent
  // View of the tensor's bytes in the mapping. Throws FormatError naming the tensor if it is
  // absent, its dtype has no DType (naming the dtype), it has more than Tensor::kMaxDims dims, or
  // its data is not aligned to its element size. A scalar (shape []) is viewed with shape (1).
  Tensor tensor(std::string_view name) const;

 private:
  SafetensorsFile() = default;
  void parse_all();
  std::shared_ptr<const void> owner_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string source_;
  size_t data_offset_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> index_;  // name -> position in tensors_
};

}  // namespace contrail
