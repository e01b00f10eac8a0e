// Cache layout: folders, blob presence, snapshot links and refs. All replacements go through a
// temporary name and rename(2), so a crash never leaves a half-written ref or snapshot entry.
#include "hub/cache.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "contrail/hub/hub.h"

namespace contrail::hub::detail {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void io_error(const std::string& what, const std::string& path, const std::string& why) {
  throw HubError(HubErrorKind::Io, fmt::format("cache: cannot {} '{}': {}", what, path, why));
}

void make_dirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) io_error("create folder", dir, ec.message());
}

std::string temp_name(const std::string& path) { return fmt::format("{}.tmp.{}", path, ::getpid()); }

}  // namespace

FileLock::FileLock(const std::string& path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) io_error("open lock file", path, std::strerror(errno));
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    ::close(fd_);
    io_error("lock", path, std::strerror(err));
  }
}

FileLock::~FileLock() {
  ::flock(fd_, LOCK_UN);
  ::close(fd_);
}

void rename_file(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0)
    io_error(fmt::format("rename '{}' to", from), to, std::strerror(errno));
}

RepoCache::RepoCache(const std::string& cache_dir, const std::string& repo_id) {
  const std::string folder = repo_folder_name(repo_id);
  repo_dir_ = cache_dir + "/" + folder;
  lock_dir_ = cache_dir + "/.locks/" + folder;
  for (const char* sub : {"/blobs", "/snapshots", "/refs"}) make_dirs(repo_dir_ + sub);
  make_dirs(lock_dir_);
}

bool RepoCache::has_blob(const std::string& hash, int64_t size) const {
  std::error_code ec;
  const auto st = fs::status(blob_path(hash), ec);
  return !ec && fs::is_regular_file(st) && static_cast<int64_t>(fs::file_size(blob_path(hash), ec)) == size && !ec;
}

bool RepoCache::snapshot_has(const std::string& commit, const std::string& path, const std::string& hash) const {
  std::error_code ec;
  const fs::path entry = snapshot_dir(commit) + "/" + path;
  if (fs::is_symlink(fs::symlink_status(entry, ec))) {
    const fs::path target = fs::read_symlink(entry, ec);
    return !ec && target.filename() == hash && fs::equivalent(entry, blob_path(hash), ec) && !ec;
  }
  // A copy (file systems without symlinks): trusted when it has the blob's size.
  return fs::is_regular_file(fs::status(entry, ec)) && fs::file_size(entry, ec) == fs::file_size(blob_path(hash), ec) &&
         !ec;
}

void RepoCache::link_snapshot(const std::string& commit, const std::string& path, const std::string& hash) const {
  const std::string entry = snapshot_dir(commit) + "/" + path;
  make_dirs(fs::path(entry).parent_path().string());
  // Relative target: one "../" per folder between the entry and the repository folder.
  std::string target;
  for (size_t depth = 2 + static_cast<size_t>(std::count(path.begin(), path.end(), '/')); depth > 0; --depth)
    target += "../";
  target += "blobs/" + hash;
  const std::string tmp = temp_name(entry);
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_symlink(target, tmp, ec);
  if (ec) {
    fs::copy_file(blob_path(hash), tmp, fs::copy_options::overwrite_existing, ec);
    if (ec) io_error("create snapshot entry", entry, ec.message());
  }
  rename_file(tmp, entry);
}

void RepoCache::write_ref(const std::string& revision, const std::string& commit) const {
  if (revision == commit) return;
  const std::string ref = repo_dir_ + "/refs/" + revision;  // branch names may contain '/'
  make_dirs(fs::path(ref).parent_path().string());
  const std::string tmp = temp_name(ref);
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << commit;
    if (!f.flush()) io_error("write", tmp, "write failed");
  }
  rename_file(tmp, ref);
}

}  // namespace contrail::hub::detail
