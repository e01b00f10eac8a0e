// The on-disk cache of one repository (layout in contrail/hub/hub.h), private to src/hub.
#pragma once
#include <cstdint>
#include <string>

namespace contrail::hub::detail {

// An exclusive flock() on a lock file, released by the destructor. Serialises pulls of the same
// blob from several processes; the lock file itself is left behind (as huggingface_hub does).
class FileLock {
 public:
  explicit FileLock(const std::string& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

class RepoCache {
 public:
  // Creates cache_dir/models--o--n/{blobs,snapshots,refs} and the lock folder if missing.
  RepoCache(const std::string& cache_dir, const std::string& repo_id);

  const std::string& repo_dir() const { return repo_dir_; }
  std::string blob_path(const std::string& hash) const { return repo_dir_ + "/blobs/" + hash; }
  std::string incomplete_path(const std::string& hash) const { return blob_path(hash) + ".incomplete"; }
  std::string lock_path(const std::string& hash) const { return lock_dir_ + "/" + hash + ".lock"; }
  std::string snapshot_dir(const std::string& commit) const { return repo_dir_ + "/snapshots/" + commit; }

  // A blob is complete when it exists under its final name with the expected size.
  bool has_blob(const std::string& hash, int64_t size) const;
  // True when snapshots/<commit>/<path> already resolves to the complete blob `hash`.
  bool snapshot_has(const std::string& commit, const std::string& path, const std::string& hash) const;
  // Makes snapshots/<commit>/<path> a relative symlink to the blob (a copy where symlinks fail),
  // replacing any previous entry atomically.
  void link_snapshot(const std::string& commit, const std::string& path, const std::string& hash) const;
  // refs/<revision> = commit (atomic write); no-op when the revision is the commit itself.
  void write_ref(const std::string& revision, const std::string& commit) const;

 private:
  std::string repo_dir_;
  std::string lock_dir_;
};

// Renames `from` over `to` (same file system); throws HubError(Io) naming both.
void rename_file(const std::string& from, const std::string& to);

}  // namespace contrail::hub::detail
