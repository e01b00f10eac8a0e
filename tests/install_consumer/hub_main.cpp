// Uses the installed contrail_hub: Python-fnmatch globs and repository names, then a pull from an
// endpoint that refuses connections, which must fail as a HubError of kind Network (so libcurl is
// linked and runs). No network access is needed.
#include <contrail/hub/hub.h>

#include <cstdio>
#include <filesystem>
#include <string>

int main() {
  namespace hub = contrail::hub;
  if (!hub::glob_match("*.safetensors", "sub/model.safetensors") || hub::glob_match("*.json", "config.json.bak")) {
    std::fprintf(stderr, "hub_consumer: glob_match disagrees with fnmatch\n");
    return 1;
  }
  if (hub::repo_folder_name("owner/name") != "models--owner--name") return 1;
  hub::PullOptions o;
  o.hub.endpoint = "http://127.0.0.1:9";  // the discard port: nothing listens there
  o.hub.token = "unused";
  o.hub.max_retries = 0;
  o.cache_dir = (std::filesystem::temp_directory_path() / "contrail_hub_consumer_cache").string();
  try {
    hub::pull("owner/name", o);
    std::fprintf(stderr, "hub_consumer: pull from a closed port succeeded\n");
    return 1;
  } catch (const hub::HubError& e) {
    std::filesystem::remove_all(o.cache_dir);
    if (e.kind() != hub::HubErrorKind::Network) {
      std::fprintf(stderr, "hub_consumer: expected a network error, got: %s\n", e.what());
      return 1;
    }
    std::printf("hub_consumer: glob_match ok; pull from a closed port: %s\n", e.what());
  }
  return 0;
}
