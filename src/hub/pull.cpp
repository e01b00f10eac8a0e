// `pull`: resolve the revision, select files, bring each blob into the cache and link the snapshot.
#include <fmt/format.h>

#include <numeric>

#include "contrail/hub/hub.h"
#include "hub/cache.h"
#include "hub/download.h"
#include "hub/http.h"

namespace contrail::hub {
namespace {

// Branch, tag or commit: it becomes refs/<revision>, so it must stay inside refs/.
void validate_revision(const std::string& repo_id, const std::string& rev) {
  bool ok = !rev.empty() && rev.front() != '/' && rev.back() != '/' && rev.find("..") == std::string::npos &&
            rev.find("//") == std::string::npos && rev.find('\\') == std::string::npos;
  for (unsigned char c : rev) ok = ok && c > ' ' && c != 0x7f;
  if (!ok) throw InvalidArgument(fmt::format("repository '{}': invalid revision '{}'", repo_id, rev));
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

}  // namespace

PullResult pull(const std::string& repo_id, const PullOptions& opts) {
  validate_repo_id(repo_id);
  validate_revision(repo_id, opts.revision);
  const detail::HttpClient http(opts.hub);
  const RepoInfo info = fetch_repo_info(repo_id, opts.revision, opts.hub);
  const std::vector<RepoFile> files = filter_files(info.files, opts.include, opts.exclude);
  if (files.empty())
    throw InvalidArgument(fmt::format("repository '{}' at {}: none of its {} files matches include [{}] / exclude [{}]",
                                      repo_id, info.commit, info.files.size(), join(opts.include),
                                      join(opts.exclude)));

  const detail::RepoCache cache(opts.cache_dir.empty() ? default_cache_dir() : opts.cache_dir, repo_id);
  PullResult result;
  result.commit = info.commit;
  result.snapshot_dir = cache.snapshot_dir(info.commit);
  result.n_files = files.size();

  PullProgress p;
  p.n_files = files.size();
  p.total_bytes = std::accumulate(files.begin(), files.end(), int64_t{0},
                                  [](int64_t a, const RepoFile& f) { return a + f.size; });
  auto report = [&] {
    if (opts.progress) opts.progress(p);
  };

  for (const RepoFile& f : files) {
    const std::string& hash = f.blob_name();
    p.file = &f;
    const int64_t done_before = p.total_done;
    if (cache.has_blob(hash, f.size) && cache.snapshot_has(info.commit, f.path, hash)) {
      p.file_done = f.size;  // complete from an earlier pull
    } else {
      const std::string url = fmt::format("{}/{}/resolve/{}/{}", http.endpoint(), repo_id, info.commit,
                                          detail::url_escape(f.path, true));
      const detail::BlobTransfer t = detail::download_blob(http, cache, repo_id, f, url, [&](int64_t have) {
        p.file_done = have;
        p.total_done = done_before + have;
        report();
      });
      cache.link_snapshot(info.commit, f.path, hash);
      result.bytes_downloaded += t.bytes;
      result.bytes_resumed += t.resumed;
      result.n_downloaded += t.fetched ? 1 : 0;
      p.file_done = f.size;
    }
    p.total_done = done_before + f.size;
    ++p.files_done;
    report();
  }
  cache.write_ref(opts.revision, info.commit);
  p.file = nullptr;
  p.finished = true;
  report();
  return result;
}

}  // namespace contrail::hub
