// Read-only memory-mapped file. Contract: bytes() stays valid while any shared_ptr to the
// MappedFile lives; the mapping is never written. Opening a missing/unreadable file throws
// contrail::Error naming the path and errno text; anything but a regular file (after following
// symbolic links: a FIFO, directory, device or socket) throws contrail::Error naming the path and
// its type, without blocking (a FIFO is never opened for reading). Zero-length files map to an
// empty span.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace contrail {

class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Bounds-checked little-endian cursor over a byte span. Every read that would pass the end throws
// FormatError naming `what` (the field), the offset and the file size. Never reads out of bounds.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size, std::string source)
      : data_(data), size_(size), source_(std::move(source)) {}

  size_t offset() const { return off_; }
  size_t size() const { return size_; }
  size_t remaining() const { return size_ - off_; }
  const std::string& source() const { return source_; }
  void seek(size_t off, const char* what);
  void skip(size_t n, const char* what);

  uint8_t u8(const char* what);
  uint16_t u16(const char* what);
  uint32_t u32(const char* what);
  uint64_t u64(const char* what);
  int32_t i32(const char* what) { return static_cast<int32_t>(u32(what)); }
  int64_t i64(const char* what) { return static_cast<int64_t>(u64(what)); }
  float f32(const char* what);
  double f64(const char* what);
  // Returns a pointer to n bytes at the cursor and advances.
  const uint8_t* bytes(size_t n, const char* what);

 private:
  void need(size_t n, const char* what) const;
  const uint8_t* data_;
  size_t size_;
  size_t off_ = 0;
  std::string source_;
};

}  // namespace contrail
