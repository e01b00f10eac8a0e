// Hugging Face Hub client: resolve a model repository at a revision and download it into a local,
// content-addressed cache (`contrail pull`).
//
// Protocol (the public Hub HTTP API, as huggingface_hub uses it):
//   GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true
//       -> {"sha": "<commit>", "siblings": [{"rfilename", "size", "blobId", "lfs": {"sha256", "size"}}]}
//   GET {endpoint}/{repo}/resolve/{commit}/{path}   (redirects followed; Range for resumption)
//   Errors: the X-Error-Code header (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo) and
//   the status (401/403: needs a token or access to a gated repo; 404: not found).
//
// Cache layout (as huggingface_hub's, under cache_dir):
//   models--{owner}--{name}/blobs/{hash}                 file contents; hash = sha256 for LFS files,
//                                                        git blob sha1 for the others
//   models--{owner}--{name}/blobs/{hash}.incomplete      partial download, resumed with HTTP Range
//   models--{owner}--{name}/snapshots/{commit}/{path}    relative symlink to ../../blobs/{hash}
//                                                        (a copy where symlinks are unsupported)
//   models--{owner}--{name}/refs/{revision}              the commit the branch/tag resolved to
//   .locks/models--{owner}--{name}/{hash}.lock           flock() held while a blob is written
//
// Invariants: a file under blobs/ without the .incomplete suffix has been verified against the hash
// it is named by (sha256 of the bytes, or sha1 of "blob {size}\0" + bytes), and a snapshot entry
// only ever points at such a blob. Every failure throws contrail::hub::HubError (a contrail::Error)
// naming the repository, file, URL or hash involved.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "contrail/core/error.h"

namespace contrail::hub {

// Why a Hub operation failed; lets callers (and tests) react without parsing messages.
enum class HubErrorKind {
  RepoNotFound,      // 404 / X-Error-Code RepoNotFound (the Hub also answers 401 for private repos)
  RevisionNotFound,  // the branch, tag or commit does not exist
  EntryNotFound,     // a file listed by the API is missing on the server
  Unauthorized,      // 401/403 or GatedRepo: a token, or accepting the repo's terms, is needed
  Http,              // any other HTTP status
  Network,           // connection failures, resets, timeouts (after the retries)
  Checksum,          // downloaded bytes do not match the expected hash (after one fresh retry)
  Protocol,          // the server's answer is malformed (bad JSON, missing fields, bad path)
  Io,                // local file system errors in the cache
};

class HubError : public Error {
 public:
  HubError(HubErrorKind kind, const std::string& what) : Error(what), kind_(kind) {}
  HubErrorKind kind() const { return kind_; }

 private:
  HubErrorKind kind_;
};

// Connection settings shared by every request.
struct HubOptions {
  std::string endpoint;  // empty: default_endpoint()
  std::string token;     // empty: default_token(); sent as "Authorization: Bearer <token>" to the endpoint only
  int max_retries = 4;   // extra attempts after a transient failure (connection error, 429, 5xx)
  double retry_base_delay_s = 1.0;  // backoff: base * 2^attempt, capped at 16 s
  long connect_timeout_s = 15;
  long stall_timeout_s = 60;  // abort a transfer that moves no byte for this long (then retried)
};

// One regular file of a repository at a commit.
struct RepoFile {
  std::string path;        // '/'-separated, relative to the repository root (validated: no "..", no leading '/')
  int64_t size = 0;        // bytes of the real content (for LFS files, the LFS object's size)
  std::string blob_id;     // git blob sha1 (40 hex) of the content; for LFS files, of the pointer file
  std::string lfs_sha256;  // 64 hex for LFS files, empty otherwise
  bool is_lfs() const { return !lfs_sha256.empty(); }
  // The cache blob name, which is also the hash the content is verified against.
  const std::string& blob_name() const { return is_lfs() ? lfs_sha256 : blob_id; }
};

struct RepoInfo {
  std::string repo_id;         // "owner/name"
  std::string commit;          // 40-hex commit the revision resolved to
  std::vector<RepoFile> files;  // sorted by path
};

// Progress of a pull, reported when a file starts (file_done = bytes already on disk, e.g. a resumed
// partial download), after every received chunk, and when a file is complete.
struct PullProgress {
  const RepoFile* file = nullptr;  // the file in flight; null on the final report
  int64_t file_done = 0;           // bytes of `file` present locally (including a resumed prefix)
  int64_t total_done = 0;          // bytes of all selected files present locally
  int64_t total_bytes = 0;         // bytes of all selected files
  size_t files_done = 0;
  size_t n_files = 0;
  bool finished = false;  // last report of the pull
};
using ProgressCallback = std::function<void(const PullProgress&)>;

struct PullOptions {
  HubOptions hub;
  std::string revision = "main";      // branch, tag or full commit sha
  std::vector<std::string> include;  // glob patterns; empty = every file (see glob_match)
  std::vector<std::string> exclude;  // glob patterns applied after include
  std::string cache_dir;             // empty: default_cache_dir()
  ProgressCallback progress;         // optional
};

struct PullResult {
  std::string snapshot_dir;  // cache_dir/models--o--n/snapshots/<commit>: loadable with `contrail run -m`
  std::string commit;
  size_t n_files = 0;           // files in the snapshot that matched the filters
  size_t n_downloaded = 0;      // files whose bytes were transferred in this pull (fully or resumed)
  int64_t bytes_downloaded = 0;  // bytes transferred in this pull
  int64_t bytes_resumed = 0;     // bytes of interrupted earlier downloads that were kept and continued
};

// $HF_ENDPOINT, else https://huggingface.co (no trailing slash).
std::string default_endpoint();
// $HF_TOKEN, else the file $HF_TOKEN_PATH, $HF_HOME/token or ~/.cache/huggingface/token (what
// `huggingface-cli login` writes), trimmed; empty if none.
std::string default_token();
// $CONTRAIL_CACHE, else $XDG_CACHE_HOME/contrail/hub, else $HOME/.cache/contrail/hub.
std::string default_cache_dir();

// "owner/name" (letters, digits, '-', '_', '.'; no "--" at the ends, no ".."); throws InvalidArgument.
void validate_repo_id(const std::string& repo_id);
// The repository's folder name in the cache: "models--owner--name".
std::string repo_folder_name(const std::string& repo_id);

// Python's fnmatch rules, as huggingface_hub's allow/ignore patterns (matched with fnmatch(3)):
// '*' matches any characters including '/' and leading dots, '?' any one (UTF-8) character,
// "[abc]" / "[a-c]" / "[!abc]" sets ("[^abc]" holds '^', as in Python); a backslash is an ordinary
// character; an unterminated '[' is literal; a pattern ending in '/' matches everything below it.
bool glob_match(const std::string& pattern, const std::string& path);
// Files matching any include pattern (all if none) and no exclude pattern, order kept.
std::vector<RepoFile> filter_files(const std::vector<RepoFile>& files, const std::vector<std::string>& include,
                                   const std::vector<std::string>& exclude);

// Resolves `revision` and lists the repository's files (one API request).
RepoInfo fetch_repo_info(const std::string& repo_id, const std::string& revision, const HubOptions& opts);

// Downloads the selected files of `repo_id` at `opts.revision` into the cache and returns the
// snapshot folder. Files already complete in the cache are not transferred again; a partial blob
// left by an interrupted pull is continued with a Range request. Each blob is verified before it
// is renamed into place; on a mismatch the partial file is deleted and downloaded once more from
// scratch, then HubError(Checksum) names the file, the expected and the actual hash.
PullResult pull(const std::string& repo_id, const PullOptions& opts);

// A progress callback drawing one status line per file and a total line (bytes, rate, ETA) on
// stderr, redrawn at most ~10 times a second; meant for a terminal.
ProgressCallback stderr_progress_bar();

}  // namespace contrail::hub
