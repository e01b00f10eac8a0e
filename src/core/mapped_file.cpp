#include "contrail/core/mapped_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "contrail/core/error.h"

namespace contrail {

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw Error(fmt::format("cannot stat '{}': {}", path, std::strerror(e)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(fmt::format("'{}' is not a regular file", path));
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      throw Error(fmt::format("cannot mmap '{}' ({} bytes): {}", path, f->size_, std::strerror(e)));
    }
    f->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return f;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

void ByteReader::need(size_t n, const char* what) const {
  if (n > size_ - off_)
    throw FormatError(fmt::format("{}: truncated while reading {} ({} bytes needed at offset {}, file size {})",
                                  source_, what, n, off_, size_));
}

void ByteReader::seek(size_t off, const char* what) {
  if (off > size_)
    throw FormatError(fmt::format("{}: {} offset {} is beyond the file size {}", source_, what, off, size_));
  off_ = off;
}

void ByteReader::skip(size_t n, const char* what) {
  need(n, what);
  off_ += n;
}

const uint8_t* ByteReader::bytes(size_t n, const char* what) {
  need(n, what);
  const uint8_t* p = data_ + off_;
  off_ += n;
  return p;
}

uint8_t ByteReader::u8(const char* what) { return *bytes(1, what); }
uint16_t ByteReader::u16(const char* what) {
  uint16_t v;
  std::memcpy(&v, bytes(2, what), 2);
  return v;
}
uint32_t ByteReader::u32(const char* what) {
  uint32_t v;
  std::memcpy(&v, bytes(4, what), 4);
  return v;
}
uint64_t ByteReader::u64(const char* what) {
  uint64_t v;
  std::memcpy(&v, bytes(8, what), 8);
  return v;
}
float ByteReader::f32(const char* what) {
  float v;
  std::memcpy(&v, bytes(4, what), 4);
  return v;
}
double ByteReader::f64(const char* what) {
  double v;
  std::memcpy(&v, bytes(8, what), 8);
  return v;
}

}  // namespace contrail
