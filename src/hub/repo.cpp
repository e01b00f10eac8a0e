// Repository identity and listing: defaults from the environment, repo-id and path validation,
// glob filters, and the revision API call that resolves a commit and lists the files.
#include <fmt/format.h>
#include <fnmatch.h>
#include <locale.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "contrail/hub/hub.h"
#include "hub/http.h"

namespace contrail::hub {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string home_dir() {
  const std::string h = env("HOME");
  return h.empty() ? "." : h;
}

std::string read_trimmed(const std::string& path) {
  std::ifstream f(path);
  if (!f) return {};
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

bool is_hex(const std::string& s, size_t len) {
  return s.size() == len && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// A repository-relative path that cannot escape the snapshot folder.
void validate_repo_path(const std::string& repo_id, const std::string& path) {
  bool ok = !path.empty() && path.front() != '/' && path.find('\\') == std::string::npos &&
            path.find('\0') == std::string::npos;
  for (size_t b = 0; ok && b <= path.size();) {
    size_t e = path.find('/', b);
    if (e == std::string::npos) e = path.size();
    const std::string part = path.substr(b, e - b);
    ok = !part.empty() && part != "." && part != "..";
    b = e + 1;
  }
  if (!ok)
    throw HubError(HubErrorKind::Protocol,
                   fmt::format("repository '{}': the server listed an unsafe file path '{}'", repo_id, path));
}

// `pattern` in the syntax of fnmatch(3) without flags, for Python's fnmatch rules (which
// huggingface_hub's allow/ignore patterns follow): a backslash is an ordinary character there
// (doubled here, since fnmatch(3) escapes with it), and a '^' opening a set is a member, not a
// negation ('!' negates in both).
std::string python_to_posix_glob(const std::string& pattern) {
  std::string out;
  out.reserve(pattern.size() + 4);
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '[' && i + 1 < pattern.size() && pattern[i + 1] == '^') {
      out += "[\\^";
      ++i;
    } else {
      out += c;
    }
  }
  return out;
}

// The C.UTF-8 character type locale, so that '?' and sets match whole UTF-8 characters as Python
// does (not bytes); null if the C library has none (then the thread's locale is used).
locale_t utf8_ctype() {
  static const locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
  return loc;
}

}  // namespace

std::string default_endpoint() {
  std::string e = env("HF_ENDPOINT");
  if (e.empty()) e = "https://huggingface.co";
  while (!e.empty() && e.back() == '/') e.pop_back();
  return e;
}

std::string default_token() {
  if (std::string t = env("HF_TOKEN"); !t.empty()) return t;
  std::string path = env("HF_TOKEN_PATH");
  if (path.empty()) {
    const std::string hf_home = env("HF_HOME");
    path = (hf_home.empty() ? home_dir() + "/.cache/huggingface" : hf_home) + "/token";
  }
  return read_trimmed(path);
}

std::string default_cache_dir() {
  if (std::string c = env("CONTRAIL_CACHE"); !c.empty()) return c;
  const std::string xdg = env("XDG_CACHE_HOME");
  return (xdg.empty() ? home_dir() + "/.cache" : xdg) + "/contrail/hub";
}

void validate_repo_id(const std::string& repo_id) {
  const size_t slash = repo_id.find('/');
  bool ok = slash != std::string::npos && slash > 0 && slash + 1 < repo_id.size() &&
            repo_id.find('/', slash + 1) == std::string::npos && repo_id.find("..") == std::string::npos &&
            repo_id.find("--") == std::string::npos && repo_id.size() <= 200;
  for (char c : repo_id)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/');
  if (!ok)
    throw InvalidArgument(fmt::format(
        "repository id '{}': expected 'owner/name' (letters, digits, '-', '_', '.'; no '--' or '..')", repo_id));
}

std::string repo_folder_name(const std::string& repo_id) {
  std::string name = "models--" + repo_id;
  const size_t slash = name.find('/');
  if (slash != std::string::npos) name.replace(slash, 1, "--");
  return name;
}

bool glob_match(const std::string& pattern, const std::string& path) {
  // huggingface_hub adds '*' to a pattern ending in '/': the whole folder.
  const std::string p = python_to_posix_glob(!pattern.empty() && pattern.back() == '/' ? pattern + "*" : pattern);
  // No FNM_PATHNAME ('*' crosses '/'), no FNM_PERIOD (leading dots are ordinary): Python's rules.
  const locale_t loc = utf8_ctype();
  const locale_t previous = loc ? uselocale(loc) : static_cast<locale_t>(0);
  const int r = fnmatch(p.c_str(), path.c_str(), 0);
  if (loc) uselocale(previous);
  return r == 0;
}

std::vector<RepoFile> filter_files(const std::vector<RepoFile>& files, const std::vector<std::string>& include,
                                   const std::vector<std::string>& exclude) {
  std::vector<RepoFile> out;
  auto any = [](const std::vector<std::string>& pats, const std::string& path) {
    return std::any_of(pats.begin(), pats.end(), [&](const std::string& p) { return glob_match(p, path); });
  };
  for (const RepoFile& f : files)
    if ((include.empty() || any(include, f.path)) && !any(exclude, f.path)) out.push_back(f);
  return out;
}

RepoInfo fetch_repo_info(const std::string& repo_id, const std::string& revision, const HubOptions& opts) {
  validate_repo_id(repo_id);
  if (revision.empty()) throw InvalidArgument(fmt::format("repository '{}': empty revision", repo_id));
  const detail::HttpClient http(opts);
  const std::string url = fmt::format("{}/api/models/{}/revision/{}?blobs=true", http.endpoint(), repo_id,
                                      detail::url_escape(revision, false));
  const detail::HttpResponse r = http.get(url);
  const std::string what = fmt::format("repository '{}' (revision '{}')", repo_id, revision);
  if (r.curl_code != 0 || r.status != 200) detail::throw_http_error(r, what, http.has_token());

  auto bad = [&](const std::string& why) {
    return HubError(HubErrorKind::Protocol, fmt::format("{}: unexpected API reply from {}: {}", what, url, why));
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(r.body);
  } catch (const nlohmann::json::exception& e) {
    throw bad(fmt::format("invalid JSON ({})", e.what()));
  }
  if (!j.is_object()) throw bad("not a JSON object");
  RepoInfo info;
  info.repo_id = repo_id;
  if (!j.contains("sha") || !j["sha"].is_string() || !is_hex(j["sha"].get<std::string>(), 40))
    throw bad("\"sha\" is not a 40-digit commit hash");
  info.commit = j["sha"].get<std::string>();
  if (!j.contains("siblings") || !j["siblings"].is_array()) throw bad("no \"siblings\" array");

  for (const auto& s : j["siblings"]) {
    if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string())
      throw bad("a sibling without \"rfilename\"");
    RepoFile f;
    f.path = s["rfilename"].get<std::string>();
    validate_repo_path(repo_id, f.path);
    const auto& lfs = s.contains("lfs") && s["lfs"].is_object() ? s["lfs"] : nlohmann::json();
    if (lfs.is_object()) {
      if (!lfs.contains("sha256") || !lfs["sha256"].is_string() || !is_hex(lfs["sha256"].get<std::string>(), 64))
        throw bad(fmt::format("'{}': \"lfs.sha256\" is not 64 hex digits", f.path));
      f.lfs_sha256 = lfs["sha256"].get<std::string>();
    }
    const auto& size = lfs.is_object() && lfs.contains("size") ? lfs["size"] : s.value("size", nlohmann::json());
    if (!size.is_number_integer() || size.get<int64_t>() < 0)
      throw bad(fmt::format("'{}': no \"size\" (the endpoint must support ?blobs=true)", f.path));
    f.size = size.get<int64_t>();
    if (s.contains("blobId") && s["blobId"].is_string()) f.blob_id = s["blobId"].get<std::string>();
    if (!f.is_lfs() && !is_hex(f.blob_id, 40))
      throw bad(fmt::format("'{}': \"blobId\" is not a 40-digit git blob id", f.path));
    info.files.push_back(std::move(f));
  }
  std::sort(info.files.begin(), info.files.end(),
            [](const RepoFile& a, const RepoFile& b) { return a.path < b.path; });
  for (size_t i = 1; i < info.files.size(); ++i)
    if (info.files[i].path == info.files[i - 1].path) throw bad(fmt::format("'{}' listed twice", info.files[i].path));
  return info;
}

}  // namespace contrail::hub
