// Resumable, verified download of one file into its cache blob (private to src/hub).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "contrail/hub/hub.h"
#include "hub/cache.h"
#include "hub/http.h"

namespace contrail::hub::detail {

struct BlobTransfer {
  int64_t bytes = 0;     // bytes received over the network by this call
  int64_t resumed = 0;   // bytes of a previous partial download that were kept
  bool fetched = false;  // false: the blob was already complete (nothing requested)
};

// Makes cache.blob_path(file.blob_name()) a complete, verified copy of `url`'s content.
//  - Holds the blob's lock file while working, so concurrent pulls wait for each other.
//  - Continues an existing .incomplete file with "Range: bytes=N-" (a 200 reply restarts it;
//    a 416 or a hash mismatch deletes it and starts once more from scratch).
//  - Transient failures (connection drops, 5xx) resume after a backoff, opts.max_retries times.
//  - Verifies sha256 (LFS) or the git blob sha1 and the size, then renames into place.
// `on_progress(bytes present)` is called after every chunk. Throws HubError (Checksum, Network,
// EntryNotFound, Unauthorized, Http, Io) naming the file and repository.
BlobTransfer download_blob(const HttpClient& http, const RepoCache& cache, const std::string& repo_id,
                           const RepoFile& file, const std::string& url,
                           const std::function<void(int64_t)>& on_progress);

}  // namespace contrail::hub::detail
