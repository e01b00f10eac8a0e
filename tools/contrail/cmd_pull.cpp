// `contrail pull`: download a Hugging Face model repository into the local cache and print the
// snapshot folder (stdout), which `contrail run -m DIR` loads.
#include <fmt/format.h>
#include <unistd.h>

#include "common.h"
#include "contrail/hub/hub.h"

namespace contrail::cli {
namespace {

struct PullArgs {
  std::string repo;
  hub::PullOptions pull;
  bool progress = false;
  bool no_progress = false;
};

int pull(PullArgs& a) {
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  const bool show = a.progress || (tty && !a.no_progress);
  if (show) a.pull.progress = hub::stderr_progress_bar();
  const hub::PullResult r = hub::pull(a.repo, a.pull);
  if (show)
    fmt::print(stderr, "{}@{}: {} files, {} downloaded ({:.2f} MiB{})\n", a.repo, r.commit.substr(0, 12), r.n_files,
               r.n_downloaded, r.bytes_downloaded / 1048576.0,
               r.bytes_resumed > 0 ? fmt::format(", {:.2f} MiB resumed", r.bytes_resumed / 1048576.0) : "");
  fmt::print("{}\n", r.snapshot_dir);
  return 0;
}

}  // namespace

void register_pull(CLI::App& app, int& status) {
  auto a = std::make_shared<PullArgs>();
  CLI::App* sub = app.add_subcommand(
      "pull",
      "Download a Hugging Face model repository into the local cache (resumable, checksum-verified)\n"
      "and print its snapshot folder, e.g.  contrail run -m \"$(contrail pull owner/name)\"");
  sub->footer(
      "Files land in CACHE/models--OWNER--NAME/{blobs,snapshots/COMMIT,refs} (the huggingface_hub layout).\n"
      "An interrupted pull continues where it stopped when run again; files already complete are skipped.\n"
      "Each file is verified (sha256 for LFS files, git blob sha1 otherwise) before it enters the snapshot.\n"
      "Environment: HF_ENDPOINT, HF_TOKEN (else the token file of `huggingface-cli login`), CONTRAIL_CACHE.");
  sub->add_option("repo", a->repo, "Repository id, OWNER/NAME (e.g. HuggingFaceTB/SmolLM2-135M-Instruct)")->required();
  sub->add_option("-r,--revision", a->pull.revision, "Branch, tag or commit to download")->capture_default_str();
  sub->add_option("-I,--include", a->pull.include,
                  "Only files matching this glob (repeatable; '*' also matches '/'), e.g. -I '*.safetensors' -I '*.json'")
      ->allow_extra_args(false);
  sub->add_option("-X,--exclude", a->pull.exclude, "Skip files matching this glob (repeatable), e.g. -X '*.bin'")
      ->allow_extra_args(false);
  sub->add_option("--cache-dir", a->pull.cache_dir,
                  "Cache folder [default: $CONTRAIL_CACHE, else $XDG_CACHE_HOME/contrail/hub or ~/.cache/contrail/hub]");
  sub->add_option("--endpoint", a->pull.hub.endpoint, "Hub URL [default: $HF_ENDPOINT, else https://huggingface.co]");
  sub->add_option("--token", a->pull.hub.token,
                  "Access token for private and gated repositories, sent as a Bearer token to the endpoint only\n"
                  "[default: $HF_TOKEN, else $HF_TOKEN_PATH, $HF_HOME/token or ~/.cache/huggingface/token]");
  sub->add_option("--retries", a->pull.hub.max_retries,
                  "Attempts after a transient failure (connection reset, timeout, HTTP 429/5xx), with backoff")
      ->capture_default_str()
      ->check(CLI::Range(0, 100));
  auto* on = sub->add_flag("--progress", a->progress, "Show the progress bar on stderr even when it is not a terminal");
  sub->add_flag("--no-progress", a->no_progress, "Never show the progress bar")->excludes(on);
  sub->callback([a, &status] { status = pull(*a); });
}

}  // namespace contrail::cli
