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

namespace {

// What a non-regular file is, for the error message.
const char* file_type_name(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

[[noreturn]] void not_regular(const std::string& path, mode_t mode) {
  throw Error(fmt::format("'{}' is {}, not a regular file (model, tokenizer and config files must be regular files)",
                          path, file_type_name(mode)));
}

}  // namespace

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  // The type is checked before open(): opening a FIFO for reading blocks until a writer appears,
  // and opening a device can have side effects. O_NONBLOCK covers the file being replaced between
  // stat() and open() (a FIFO then opens at once and fails the fstat() check below); it has no
  // effect on a regular file, which is only mmap()ed.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw Error(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) not_regular(path, st.st_mode);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) throw Error(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw Error(fmt::format("cannot stat '{}': {}", path, std::strerror(e)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    not_regular(path, st.st_mode);
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
