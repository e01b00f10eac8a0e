// One blob: lock, resume or start the .incomplete file, stream with hashing, verify, rename.
#include "hub/download.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "hub/hash.h"

namespace contrail::hub::detail {
namespace fs = std::filesystem;
namespace {

// The hash a blob is named by: sha256 of the content (LFS) or git's blob sha1.
class ContentHasher {
 public:
  explicit ContentHasher(const RepoFile& f)
      : lfs_(f.is_lfs()), digest_(lfs_ ? Digest(Sha256()) : Digest(GitBlobSha1(static_cast<uint64_t>(f.size)))) {}
  void update(const void* p, size_t n) { digest_.update(p, n); }
  std::string hex() { return digest_.hex_digest(); }
  const char* name() const { return lfs_ ? "sha256" : "git blob sha1"; }

 private:
  bool lfs_;
  Digest digest_;
};

[[noreturn]] void io_error(const std::string& what, const std::string& path) {
  throw HubError(HubErrorKind::Io, fmt::format("cache: cannot {} '{}': {}", what, path, std::strerror(errno)));
}

// An append-only file descriptor for the .incomplete file.
class PartialFile {
 public:
  explicit PartialFile(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) io_error("open", path);
  }
  ~PartialFile() { ::close(fd_); }
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;

  void truncate() {
    if (::ftruncate(fd_, 0) != 0) io_error("truncate", path_);
  }
  void write(const char* p, size_t n) {
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) io_error("write", path_);
      p += w, n -= static_cast<size_t>(w);
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
};

// Bytes of an existing partial file, fed to `hasher`; 0 when there is none.
int64_t hash_existing(const std::string& path, ContentHasher& hasher) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return 0;
    io_error("open", path);
  }
  std::vector<char> buf(size_t{1} << 20);  // (1 MiB,) read chunk
  int64_t total = 0;
  for (;;) {
    const ssize_t r = ::read(fd, buf.data(), buf.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      ::close(fd);
      io_error("read", path);
    }
    if (r == 0) break;
    hasher.update(buf.data(), static_cast<size_t>(r));
    total += r;
  }
  ::close(fd);
  return total;
}

// Start offset of a "Content-Range: bytes START-END/TOTAL" header, or -1.
int64_t content_range_start(const std::string& v) {
  if (v.rfind("bytes ", 0) != 0) return -1;
  try {
    return std::stoll(v.substr(6));
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

BlobTransfer download_blob(const HttpClient& http, const RepoCache& cache, const std::string& repo_id,
                           const RepoFile& file, const std::string& url,
                           const std::function<void(int64_t)>& on_progress) {
  const std::string& hash = file.blob_name();
  const FileLock lock(cache.lock_path(hash));
  BlobTransfer out;
  if (cache.has_blob(hash, file.size)) return out;  // another process finished it meanwhile
  out.fetched = true;

  const std::string what = fmt::format("file '{}' of '{}'", file.path, repo_id);
  const std::string partial = cache.incomplete_path(hash);
  bool restarted = false;  // the one from-scratch retry after a bad partial file was used
  int attempt = 0;         // transient-failure retries used
  for (bool first = true;; first = false) {
    ContentHasher hasher(file);
    int64_t have = hash_existing(partial, hasher);
    if (have > file.size) {  // cannot be a prefix of the right content
      fs::remove(partial);
      hasher = ContentHasher(file);
      have = 0;
    }
    if (first) out.resumed = have;
    on_progress(have);

    bool oversize = false;   // the server sent more bytes than the listing's size
    bool bad_range = false;  // a 206 reply that does not start where the partial file ends
    if (have < file.size) {
      PartialFile out_file(partial);
      const int64_t offset = have;
      StreamSink sink;
      sink.on_start = [&](long status, const HttpResponse& head) {
        if (status == 206) {
          bad_range = content_range_start(head.header("content-range")) != offset;
          return !bad_range;
        }
        // A full body (the server ignored the Range, or none was sent): start the file over.
        out_file.truncate();
        hasher = ContentHasher(file);
        have = 0;
        return true;
      };
      sink.on_data = [&](const char* p, size_t n) {
        if (have + static_cast<int64_t>(n) > file.size) {
          oversize = true;
          return false;
        }
        out_file.write(p, n);
        hasher.update(p, n);
        have += static_cast<int64_t>(n);
        out.bytes += static_cast<int64_t>(n);
        on_progress(have);
        return true;
      };
      const HttpResponse r = http.get_stream(url, offset, sink);
      if (!oversize && (r.curl_code != 0 || (r.status != 200 && r.status != 206))) {
        // The partial file does not fit the server's file: start once more from scratch.
        if ((bad_range || (r.status == 416 && offset > 0)) && !restarted) {
          fs::remove(partial);
          restarted = true;
          continue;
        }
        if (is_transient(r) && attempt < http.options().max_retries) {
          backoff_sleep(http.options(), attempt++);
          continue;  // resumes from the bytes received so far
        }
        throw_http_error(r, what, http.has_token());
      }
    }

    const std::string actual = oversize ? std::string() : hasher.hex();
    if (!oversize && have == file.size && actual == hash) break;
    std::error_code ec;
    fs::remove(partial, ec);
    if (!restarted) {
      restarted = true;
      continue;
    }
    const std::string got = oversize ? fmt::format("more than the listed {} bytes", file.size)
                            : have != file.size ? fmt::format("{} bytes instead of {}", have, file.size)
                                                : fmt::format("{} {}", hasher.name(), actual);
    throw HubError(HubErrorKind::Checksum,
                   fmt::format("{}: downloaded content does not match: expected {} {} ({} bytes), got {} "
                               "(from {}; downloaded twice, the bad copy was deleted)",
                               what, hasher.name(), hash, file.size, got, url));
  }
  if (file.size == 0) PartialFile{partial};  // an empty file downloads no bytes: create it
  rename_file(partial, cache.blob_path(hash));
  return out;
}

}  // namespace contrail::hub::detail
