// contrail pull against an in-process Hugging Face Hub stand-in on loopback (cpp-httplib). The
// fixture repository (files, API JSON) is written to a temp folder and served with the Hub's URL
// scheme, error headers, LFS redirects and Range support, plus fault injection: dropped
// connections, corrupted bytes, transient 503s.
//
// Independent references: every hash below was computed once with Python's hashlib
// (sha256, and sha1 over b"blob %d\0" % len + content for git blob ids), the SHA vectors are
// NIST's (FIPS 180 examples); the 3 MiB "LFS" file is xorshift32 output replicated in Python.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "contrail/hub/hub.h"
#include "hub/hash.h"
#include "test_util.h"

#if !defined(CPPHTTPLIB_OPENSSL_SUPPORT)
#error "test_pull must be compiled with cpp-httplib's pkg-config flags (Debian's libcpp-httplib is built with OpenSSL)"
#endif

namespace contrail {
namespace {
namespace fs = std::filesystem;
using hub::HubError;
using hub::HubErrorKind;

// ---- hashes --------------------------------------------------------------------------------------

std::string sha256_hex(const std::string& s) {
  hub::Sha256 h;
  h.update(s);
  return h.hex_digest();
}

std::string sha1_hex(const std::string& s) {
  hub::Sha1 h;
  h.update(s);
  return h.hex_digest();
}

TEST(Hash, NistVectors) {
  const std::string m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  const std::string m896 =
      "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(m448), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(m896), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_EQ(sha1_hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(sha1_hex(m448), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  EXPECT_EQ(sha1_hex(m896), "a49b2446a02c645bf419f995b67091253a04a259");
  EXPECT_EQ(sha1_hex(std::string(1000000, 'a')), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST(Hash, PaddingBoundariesAndChunking) {
  // (length, sha256, sha1) of bytes (i*7+3) & 0xff, from hashlib.
  const struct {
    size_t n;
    const char* sha256;
    const char* sha1;
  } cases[] = {
      {55, "e7313d333c272e639f790978283f9eb392e843d0f29b7016828bb1daa4aac70b", "ddf57317ef34bfee3b6df83d359098930eb278bc"},
      {56, "4324d65f3c103567f5589c710bc08f8523f929a9272e3af36fc968e52abc6c27", "a0d492bb0fc889d0eca3bc137066ab6f4f74f369"},
      {57, "35df609437dcfea3279283ab79fd554e2bf78f8f7ae2de532d8ee300b09e8f73", "11a02dcf95859677a62e75024067c22b165d890f"},
      {63, "81c80242132f230c3bd41b3e63bbcff16107339549214a99614ff26664625055", "c55856749bef509bdfe6bfebfc7bf4e793e82132"},
      {64, "39e3d7b6b5d075d37d053ad89b24b41bef4f3c29760c84447cab3f3be1882241", "bede92be29c3874e1b54ddc77988d606fc857a8e"},
      {65, "aacca6ff74fdbb296d165a45cecfa04e5127bc008770fbbdd48006f2d2fae95e", "b05a80522b053d6dc7e0a517d0e70212c7dad11f"},
      {119, "9ce7368e4daf32341631b492e80359dc9f594b48453cd0dd5bf0b19279cc177e", "504e27376a6e0f0dba8295b85cb25dc4dfa17d23"},
      {120, "7836b787757e95e58b3ca5aec90b1b004e8deba1e50e9675af9cabf1a13a04b5", "82134b02fb3f702491be9bed581eeab59334acb2"},
      {128, "d2742f1f4ac6bb7ca2b239ee18402ba8b3f9f8e652d2a72973c2b9ba11c08cf6", "a09133e6730ffe899efb70204cb5646cd5dc24ee"},
  };
  for (const auto& c : cases) {
    std::string m(c.n, '\0');
    for (size_t i = 0; i < c.n; ++i) m[i] = static_cast<char>((i * 7 + 3) & 0xff);
    EXPECT_EQ(sha256_hex(m), c.sha256) << c.n;
    EXPECT_EQ(sha1_hex(m), c.sha1) << c.n;
    for (size_t step : {1, 3, 17, 64}) {  // the same bytes fed in uneven chunks
      hub::Sha256 a;
      hub::Sha1 b;
      for (size_t i = 0; i < c.n; i += step) {
        a.update(m.data() + i, std::min(step, c.n - i));
        b.update(m.data() + i, std::min(step, c.n - i));
      }
      EXPECT_EQ(a.hex_digest(), c.sha256) << c.n << " step " << step;
      EXPECT_EQ(b.hex_digest(), c.sha1) << c.n << " step " << step;
    }
  }
  hub::GitBlobSha1 g(12);  // `git hash-object` of "nested file\n"
  g.update("nested file\n", 12);
  EXPECT_EQ(g.hex_digest(), "6bd82e79b62ea4c56e352fca7f71addc4484275b");
}

// ---- repo ids, globs -----------------------------------------------------------------------------

TEST(HubNames, RepoIdsAndFolders) {
  EXPECT_EQ(hub::repo_folder_name("HuggingFaceTB/SmolLM2-135M"), "models--HuggingFaceTB--SmolLM2-135M");
  EXPECT_NO_THROW(hub::validate_repo_id("a-b/c.d_e"));
  for (const char* bad : {"noslash", "a/b/c", "/a", "a/", "a/../b", "a--b/c", "a/b c", ""})
    test::expect_invalid([&] { hub::validate_repo_id(bad); }, {"repository id", bad});
}

TEST(HubNames, GlobsFollowFnmatch) {
  EXPECT_TRUE(hub::glob_match("*.json", "config.json"));
  EXPECT_TRUE(hub::glob_match("*.json", "sub/dir/x.json"));  // '*' crosses '/', as in fnmatch
  EXPECT_FALSE(hub::glob_match("*.json", "config.json.bak"));
  EXPECT_TRUE(hub::glob_match("model-0000?-of-00002.safetensors", "model-00001-of-00002.safetensors"));
  EXPECT_TRUE(hub::glob_match("[!R]*", "config.json"));
  EXPECT_FALSE(hub::glob_match("[!R]*", "README.md"));
  EXPECT_TRUE(hub::glob_match("[a-c]onfig.json", "config.json"));
  EXPECT_TRUE(hub::glob_match("sub/", "sub/dir/notes.txt"));  // trailing '/' = the whole folder
  EXPECT_FALSE(hub::glob_match("sub/", "subway.txt"));
  EXPECT_TRUE(hub::glob_match("[x", "[x"));  // an unterminated set is literal
}

TEST(HubNames, GlobsAgreeWithPythonFnmatch) {
  // (pattern, path, fnmatch.fnmatch(path, pattern)) from CPython 3.11, the rules huggingface_hub's
  // allow_patterns / ignore_patterns follow (plus its '/' -> '/*' folder rule).
  struct Case {
    const char* pattern;
    const char* path;
    bool match;
  };
  const Case cases[] = {
      {"*", ".hidden", true},                  // no FNM_PERIOD
      {"*/*.bin", "a/.b.bin", true},           // no FNM_PATHNAME
      {"**/*.md", "README.md", false},         // '**' is two '*', and the '/' must be there
      {"?", "\xc3\xa9", true},                 // '?' is one character (U+00E9), not one byte
      {"?", "\xc3", true},                     // (not valid UTF-8: glibc takes the byte as one character)
      {"model-?.bin", "model-\xe2\x82\xac.bin", true},
      {"[^R]*", "README.md", true},            // '^' is a set member in Python, not a negation
      {"[^R]*", "^x", true},
      {"[^R]*", "x", false},
      {"[!R]*", "x", true},
      {"a\\b", "a\\b", true},                   // a backslash is an ordinary character
      {"a\\*", "a\\xyz", true},
      {"a\\*", "a*", false},
      {"[]]x", "]x", true},                    // a leading ']' is a member
      {"[!]]x", "ax", true},
      {"[!]]x", "]x", false},
      {"*.safetensors", "model.safetensors", true},
      {"*.SAFETENSORS", "model.safetensors", false},  // case-sensitive (POSIX normcase)
  };
  for (const Case& c : cases) EXPECT_EQ(hub::glob_match(c.pattern, c.path), c.match) << c.pattern << " vs " << c.path;
}

// ---- the fixture hub ----------------------------------------------------------------------------

constexpr const char* kRepo = "fixture/tiny-model";
constexpr const char* kGated = "fixture/gated-model";
constexpr const char* kToken = "hf_fixture_token";
constexpr const char* kCommitMain = "0123456789abcdef0123456789abcdef01234567";
constexpr const char* kCommitV1 = "89abcdef0123456789abcdef0123456789abcdef";
constexpr int64_t kBigSize = 3 * 1024 * 1024 + 123;
constexpr const char* kBigSha256 = "4f8820874cc4aeda36a112bdd4009b4088db6ed870b2d5fc50893090dfd9c3b8";
constexpr int64_t kBigV1Size = 1000003;
constexpr const char* kBigV1Sha256 = "348695af205a6cdf5a9f8053f88a64356d09593eaf5cf1d3480c9f1e19bd23e3";
constexpr const char* kConfigMain = "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64}\n";
constexpr const char* kConfigV1 = "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 32}\n";

std::string xorshift_bytes(size_t n, uint32_t x) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    s[i] = static_cast<char>(x & 0xff);
  }
  return s;
}

struct FixtureFile {
  std::string path;
  std::string content;
  std::string hash;  // lfs sha256, or git blob sha1 (hashlib)
  bool lfs = false;
};

// The two commits: main (= kCommitMain) and the tag v1 (= kCommitV1).
std::map<std::string, std::vector<FixtureFile>> fixture_commits() {
  return {
      {kCommitMain,
       {{"README.md", "# tiny-model\nA fixture repository for contrail pull tests.\n",
         "4d31b2462964a68c5e45c8182e48882f455aa5ef"},
        {"config.json", kConfigMain, "441c11a524855e4653d16259bc14e50dfdf759c3"},
        {"empty", "", "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"},
        {"model.safetensors", xorshift_bytes(kBigSize, 12345), kBigSha256, true},
        {"sub/dir/notes.txt", "nested file\n", "6bd82e79b62ea4c56e352fca7f71addc4484275b"},
        {"tokenizer.json", "{\"version\": \"1.0\", \"model\": {\"type\": \"BPE\"}}\n",
         "fbd0efcbd3e025aa7783be4de2106b91103218d7"}}},
      {kCommitV1,
       {{"README.md", "# tiny-model\nA fixture repository for contrail pull tests.\n",
         "4d31b2462964a68c5e45c8182e48882f455aa5ef"},
        {"config.json", kConfigV1, "f61eb69ca15297dd9bd172c4b595902c006aa7a0"},
        {"model.safetensors", xorshift_bytes(kBigV1Size, 777), kBigV1Sha256, true}}},
  };
}

struct Seen {
  std::string path;
  std::string range;  // the Range header, if any
  std::string auth;   // the Authorization header, if any
};

class FixtureHub {
 public:
  FixtureHub() : dir_("pull_fixture") {
    write_fixture();
    server_.Get(R"(/api/models/([^/]+)/([^/]+)/revision/(.+))",
                [this](const httplib::Request& q, httplib::Response& r) { api(q, r); });
    server_.Get(R"(/([^/]+)/([^/]+)/resolve/([^/]+)/(.+))",
                [this](const httplib::Request& q, httplib::Response& r) { resolve(q, r); });
    server_.Get(R"(/cdn/([0-9a-f]{64}))", [this](const httplib::Request& q, httplib::Response& r) {
      if (!record_and_inject(q, r)) return;
      serve_file(dir_.path() + "/lfs/" + q.matches[1].str(), q.path, r);
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("fixture hub: cannot bind a loopback port");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // stop() needs it
  }
  ~FixtureHub() {
    server_.stop();
    thread_.join();
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& root() const { return dir_.path(); }

  // Fault injection, keyed by request path; each applies to the next matching request(s).
  void drop_after(const std::string& path, size_t bytes) { set(drops_, path, bytes); }
  void corrupt(const std::string& path, bool on) { set(corrupt_, path, on ? 1 : 0); }
  void fail_once(const std::string& path, int status) { set(fails_, path, static_cast<size_t>(status)); }

  std::vector<Seen> seen() {
    std::lock_guard<std::mutex> lk(mu_);
    return seen_;
  }
  std::vector<Seen> seen_under(const std::string& prefix) {
    std::vector<Seen> out;
    for (const Seen& s : seen())
      if (s.path.rfind(prefix, 0) == 0) out.push_back(s);
    return out;
  }
  void clear_seen() {
    std::lock_guard<std::mutex> lk(mu_);
    seen_.clear();
  }

 private:
  void set(std::map<std::string, size_t>& m, const std::string& k, size_t v) {
    std::lock_guard<std::mutex> lk(mu_);
    if (v) m[k] = v; else m.erase(k);
  }

  // Writes files/<commit>/<path>, lfs/<sha256> and api/<repo>/<revision>.json under the temp dir.
  void write_fixture() {
    auto write = [](const std::string& path, const std::string& bytes) {
      fs::create_directories(fs::path(path).parent_path());
      std::ofstream(path, std::ios::binary) << bytes;
    };
    for (const auto& [commit, files] : fixture_commits()) {
      nlohmann::json siblings = nlohmann::json::array();
      for (const FixtureFile& f : files) {
        nlohmann::json s = {{"rfilename", f.path}, {"size", f.content.size()}};
        if (f.lfs) {
          s["blobId"] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";  // the pointer file's id
          s["lfs"] = {{"sha256", f.hash}, {"size", f.content.size()}, {"pointerSize", 134}};
          write(dir_.path() + "/lfs/" + f.hash, f.content);
        } else {
          s["blobId"] = f.hash;
        }
        write(dir_.path() + "/files/" + commit + "/" + f.path, f.content);
        siblings.push_back(s);
      }
      const nlohmann::json info = {{"id", kRepo}, {"sha", commit}, {"private", false}, {"siblings", siblings}};
      const std::string revs[] = {commit, commit == kCommitMain ? "main" : "v1"};
      for (const std::string& repo : {std::string(kRepo), std::string(kGated)})
        for (const std::string& rev : revs) write(dir_.path() + "/api/" + repo + "/" + rev + ".json", info.dump());
    }
  }

  // Logs the request and applies an armed 5xx; false when the response is already decided.
  bool record_and_inject(const httplib::Request& q, httplib::Response& r) {
    std::lock_guard<std::mutex> lk(mu_);
    seen_.push_back({q.path, q.get_header_value("Range"), q.get_header_value("Authorization")});
    if (auto it = fails_.find(q.path); it != fails_.end()) {
      r.status = static_cast<int>(it->second);
      r.set_content("temporarily unavailable", "text/plain");
      fails_.erase(it);
      return false;
    }
    return true;
  }

  static void hub_error(httplib::Response& r, int status, const std::string& code, const std::string& msg) {
    r.status = status;
    r.set_header("X-Error-Code", code);
    r.set_header("X-Error-Message", msg);
    r.set_content("{\"error\": \"" + msg + "\"}", "application/json");
  }

  // Private and missing repos look alike without a token; the gated one needs kToken.
  bool authorize(const httplib::Request& q, httplib::Response& r, const std::string& repo) {
    if (repo != kRepo && repo != kGated) {
      hub_error(r, 404, "RepoNotFound", "Repository not found");
      return false;
    }
    if (repo == kGated && q.get_header_value("Authorization") != std::string("Bearer ") + kToken) {
      hub_error(r, 401, "GatedRepo", "Access to model fixture/gated-model is restricted");
      return false;
    }
    return true;
  }

  void api(const httplib::Request& q, httplib::Response& r) {
    if (!record_and_inject(q, r)) return;
    const std::string repo = q.matches[1].str() + "/" + q.matches[2].str();
    if (!authorize(q, r, repo)) return;
    const std::string file = dir_.path() + "/api/" + repo + "/" + q.matches[3].str() + ".json";
    if (!fs::exists(file)) return hub_error(r, 404, "RevisionNotFound", "Invalid rev id: " + q.matches[3].str());
    r.set_content(test::read_text(file), "application/json");
  }

  void resolve(const httplib::Request& q, httplib::Response& r) {
    if (!record_and_inject(q, r)) return;
    const std::string repo = q.matches[1].str() + "/" + q.matches[2].str();
    if (!authorize(q, r, repo)) return;
    const std::string commit = q.matches[3].str(), path = q.matches[4].str();
    const auto commits = fixture_commits();
    const auto it = commits.find(commit);
    if (it == commits.end()) return hub_error(r, 404, "RevisionNotFound", "Invalid rev id: " + commit);
    for (const FixtureFile& f : it->second) {
      if (f.path != path) continue;
      r.set_header("X-Repo-Commit", commit);
      if (f.lfs) {  // LFS objects live on the "CDN"
        r.set_header("X-Linked-Etag", "\"" + f.hash + "\"");
        r.set_header("X-Linked-Size", std::to_string(f.content.size()));
        r.set_redirect("/cdn/" + f.hash, 302);
        return;
      }
      r.set_header("ETag", "\"" + f.hash + "\"");
      return serve_file(dir_.path() + "/files/" + commit + "/" + path, q.path, r);
    }
    hub_error(r, 404, "EntryNotFound", "Entry not found");
  }

  // Streams a file; httplib answers Range requests with 206 and calls the provider from the start
  // of the range. An armed drop closes the connection at that absolute offset.
  void serve_file(const std::string& file, const std::string& key, httplib::Response& r) {
    auto data = std::make_shared<std::string>(test::read_text(file));
    std::lock_guard<std::mutex> lk(mu_);
    if (corrupt_.count(key) && !data->empty()) (*data)[data->size() / 2] ^= 0x5a;
    size_t drop = SIZE_MAX;
    if (auto it = drops_.find(key); it != drops_.end()) drop = it->second, drops_.erase(it);
    r.set_content_provider(data->size(), "application/octet-stream",
                           [data, drop](size_t offset, size_t length, httplib::DataSink& sink) {
                             size_t n = std::min<size_t>(length, 64 * 1024);
                             if (offset + n > drop) {
                               if (drop > offset) sink.write(data->data() + offset, drop - offset);
                               return false;  // connection dropped mid-file
                             }
                             sink.write(data->data() + offset, n);
                             return true;
                           });
  }

  test::TempDir dir_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Seen> seen_;
  std::map<std::string, size_t> drops_, corrupt_, fails_;
};

std::string cdn_path(const char* sha) { return std::string("/cdn/") + sha; }
std::string resolve_path(const std::string& commit, const std::string& path) {
  return std::string("/") + kRepo + "/resolve/" + commit + "/" + path;
}

class Pull : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("HF_TOKEN");
    ::setenv("HF_TOKEN_PATH", "/nonexistent/contrail-test-token", 1);
  }

  hub::PullOptions options(const std::string& revision = "main") const {
    hub::PullOptions o;
    o.hub.endpoint = hub_.endpoint();
    o.hub.retry_base_delay_s = 0.01;
    o.hub.max_retries = 2;
    o.revision = revision;
    o.cache_dir = cache_.path();
    return o;
  }
  std::string repo_dir() const { return cache_.path() + "/models--fixture--tiny-model"; }
  std::string snapshot(const std::string& commit) const { return repo_dir() + "/snapshots/" + commit; }

  // Relative paths of the regular files reachable in a snapshot folder, sorted.
  static std::vector<std::string> snapshot_files(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (fs::is_regular_file(e.path())) out.push_back(e.path().lexically_relative(dir).string());
    std::sort(out.begin(), out.end());
    return out;
  }

  // The snapshot holds exactly the fixture's bytes for every file of `commit`.
  void expect_snapshot_matches(const std::string& commit) {
    const auto commits = fixture_commits();
    for (const FixtureFile& f : commits.at(commit)) {
      const std::string p = snapshot(commit) + "/" + f.path;
      ASSERT_TRUE(fs::exists(p)) << p;
      EXPECT_EQ(test::read_text(p), f.content) << f.path;
    }
  }

  FixtureHub hub_;
  test::TempDir cache_{"pull_cache"};
};

void expect_hub_error(const std::function<void()>& fn, HubErrorKind kind, std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "expected a HubError";
  } catch (const HubError& e) {
    EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(kind)) << e.what();
    for (const std::string& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << p << " not in: " << e.what();
  }
}

// ---- pulls -----------------------------------------------------------------------------------------

TEST_F(Pull, DownloadsTheRepositoryIntoTheHubCacheLayout) {
  std::vector<hub::PullProgress> reports;
  auto o = options();
  o.progress = [&](const hub::PullProgress& p) { reports.push_back(p); };
  const hub::PullResult r = hub::pull(kRepo, o);
  EXPECT_EQ(r.commit, kCommitMain);
  EXPECT_EQ(r.snapshot_dir, snapshot(kCommitMain));
  EXPECT_EQ(r.n_files, 6u);
  EXPECT_EQ(r.n_downloaded, 6u);
  EXPECT_EQ(r.bytes_resumed, 0);
  expect_snapshot_matches(kCommitMain);
  EXPECT_EQ(snapshot_files(r.snapshot_dir),
            (std::vector<std::string>{"README.md", "config.json", "empty", "model.safetensors", "sub/dir/notes.txt",
                                      "tokenizer.json"}));
  // Snapshot entries are relative links into blobs/, named by sha256 (LFS) or git blob sha1.
  EXPECT_EQ(fs::read_symlink(r.snapshot_dir + "/model.safetensors").string(), std::string("../../blobs/") + kBigSha256);
  EXPECT_EQ(fs::read_symlink(r.snapshot_dir + "/sub/dir/notes.txt").string(),
            "../../../../blobs/6bd82e79b62ea4c56e352fca7f71addc4484275b");
  EXPECT_EQ(test::read_text(repo_dir() + "/refs/main"), kCommitMain);
  std::vector<std::string> blobs;
  for (const auto& e : fs::directory_iterator(repo_dir() + "/blobs")) blobs.push_back(e.path().filename().string());
  EXPECT_EQ(blobs.size(), 6u);  // no .incomplete left behind
  EXPECT_TRUE(fs::exists(repo_dir() + "/blobs/" + kBigSha256));
  // The LFS file came through the CDN redirect, the others from resolve/<commit>/.
  EXPECT_EQ(hub_.seen_under(cdn_path(kBigSha256)).size(), 1u);
  EXPECT_EQ(hub_.seen_under(resolve_path(kCommitMain, "sub/dir/notes.txt")).size(), 1u);
  // Progress ends with everything done; the total never decreases.
  ASSERT_FALSE(reports.empty());
  EXPECT_TRUE(reports.back().finished);
  EXPECT_EQ(reports.back().total_done, reports.back().total_bytes);
  EXPECT_EQ(reports.back().files_done, 6u);
  for (size_t i = 1; i < reports.size(); ++i) EXPECT_GE(reports[i].total_done, reports[i - 1].total_done);
}

TEST_F(Pull, SecondPullTransfersNothing) {
  hub::pull(kRepo, options());
  hub_.clear_seen();
  const hub::PullResult r = hub::pull(kRepo, options());
  EXPECT_EQ(r.n_downloaded, 0u);
  EXPECT_EQ(r.bytes_downloaded, 0);
  const auto seen = hub_.seen();
  ASSERT_EQ(seen.size(), 1u);  // only the revision lookup
  EXPECT_EQ(seen[0].path, std::string("/api/models/") + kRepo + "/revision/main");
  expect_snapshot_matches(kCommitMain);
}

TEST_F(Pull, InterruptedDownloadResumesWithRange) {
  constexpr size_t kCut = 1024 * 1024 + 7;
  hub_.drop_after(cdn_path(kBigSha256), kCut);
  auto o = options();
  o.hub.max_retries = 0;
  expect_hub_error([&] { hub::pull(kRepo, o); }, HubErrorKind::Network, {"model.safetensors", kRepo});
  const std::string partial = repo_dir() + "/blobs/" + kBigSha256 + ".incomplete";
  ASSERT_TRUE(fs::exists(partial));
  EXPECT_EQ(fs::file_size(partial), kCut);
  EXPECT_FALSE(fs::exists(snapshot(kCommitMain) + "/model.safetensors"));

  hub_.clear_seen();
  const hub::PullResult r = hub::pull(kRepo, options());
  const auto cdn = hub_.seen_under(cdn_path(kBigSha256));
  ASSERT_EQ(cdn.size(), 1u);
  EXPECT_EQ(cdn[0].range, "bytes=" + std::to_string(kCut) + "-");
  EXPECT_EQ(r.bytes_resumed, static_cast<int64_t>(kCut));
  EXPECT_FALSE(fs::exists(partial));
  expect_snapshot_matches(kCommitMain);  // the resumed file has exactly the right bytes
  // Files before the failure were not fetched again.
  EXPECT_TRUE(hub_.seen_under(resolve_path(kCommitMain, "config.json")).empty());
}

TEST_F(Pull, DroppedConnectionIsRetriedWithinOnePull) {
  constexpr size_t kCut = 2 * 1024 * 1024 + 1;
  hub_.drop_after(cdn_path(kBigSha256), kCut);
  hub_.fail_once(resolve_path(kCommitMain, "tokenizer.json"), 503);
  const hub::PullResult r = hub::pull(kRepo, options());
  const auto cdn = hub_.seen_under(cdn_path(kBigSha256));
  ASSERT_EQ(cdn.size(), 2u);
  EXPECT_EQ(cdn[0].range, "");
  EXPECT_EQ(cdn[1].range, "bytes=" + std::to_string(kCut) + "-");
  EXPECT_EQ(hub_.seen_under(resolve_path(kCommitMain, "tokenizer.json")).size(), 2u);  // 503, then 200
  EXPECT_EQ(r.bytes_resumed, 0);  // resumed within this pull: every byte was transferred by it
  expect_snapshot_matches(kCommitMain);
}

TEST_F(Pull, CorruptedLfsFileIsDetectedAndNotPlaced) {
  hub_.corrupt(cdn_path(kBigSha256), true);
  expect_hub_error([&] { hub::pull(kRepo, options()); }, HubErrorKind::Checksum,
                   {"model.safetensors", kRepo, std::string("expected sha256 ") + kBigSha256, "got sha256 "});
  EXPECT_EQ(hub_.seen_under(cdn_path(kBigSha256)).size(), 2u);  // one fresh retry
  EXPECT_FALSE(fs::exists(repo_dir() + "/blobs/" + kBigSha256));
  EXPECT_FALSE(fs::exists(repo_dir() + "/blobs/" + kBigSha256 + ".incomplete"));
  EXPECT_FALSE(fs::exists(snapshot(kCommitMain) + "/model.safetensors"));
  EXPECT_FALSE(fs::exists(repo_dir() + "/refs/main"));  // the revision is recorded only when complete

  hub_.corrupt(cdn_path(kBigSha256), false);
  hub::pull(kRepo, options());
  expect_snapshot_matches(kCommitMain);
}

TEST_F(Pull, CorruptedSmallFileFailsItsGitBlobId) {
  hub_.corrupt(resolve_path(kCommitMain, "config.json"), true);
  expect_hub_error([&] { hub::pull(kRepo, options()); }, HubErrorKind::Checksum,
                   {"config.json", "expected git blob sha1 441c11a524855e4653d16259bc14e50dfdf759c3"});
  EXPECT_FALSE(fs::exists(snapshot(kCommitMain) + "/config.json"));
}

TEST_F(Pull, MissingRepoAndGatedRepoFailClearly) {
  expect_hub_error([&] { hub::pull("fixture/nope", options()); }, HubErrorKind::RepoNotFound,
                   {"'fixture/nope'", "not found", "HTTP 404", "--token"});
  EXPECT_EQ(hub_.seen().size(), 1u);  // not retried
  expect_hub_error([&] { hub::pull(kGated, options()); }, HubErrorKind::Unauthorized,
                   {"'fixture/gated-model'", "gated", "HTTP 401", "HF_TOKEN"});
  expect_hub_error([&] { hub::pull(kRepo, options("no-such-branch")); }, HubErrorKind::RevisionNotFound,
                   {"no-such-branch", "revision not found"});
  EXPECT_EQ(hub_.seen().size(), 3u);

  auto o = options();
  o.hub.token = kToken;
  const hub::PullResult r = hub::pull(kGated, o);
  EXPECT_EQ(r.n_files, 6u);
  for (const Seen& s : hub_.seen_under(std::string("/") + kGated))
    EXPECT_EQ(s.auth, std::string("Bearer ") + kToken) << s.path;
}

TEST_F(Pull, RevisionPinning) {
  const hub::PullResult v1 = hub::pull(kRepo, options("v1"));
  EXPECT_EQ(v1.commit, kCommitV1);
  EXPECT_EQ(v1.snapshot_dir, snapshot(kCommitV1));
  expect_snapshot_matches(kCommitV1);
  EXPECT_EQ(test::read_text(v1.snapshot_dir + "/config.json"), kConfigV1);
  EXPECT_EQ(test::read_text(repo_dir() + "/refs/v1"), kCommitV1);

  // By commit: no ref is written, and README.md (same blob in both commits) is not fetched again.
  hub_.clear_seen();
  const hub::PullResult m = hub::pull(kRepo, options(kCommitMain));
  EXPECT_EQ(m.commit, kCommitMain);
  EXPECT_FALSE(fs::exists(repo_dir() + "/refs/" + kCommitMain));
  EXPECT_TRUE(hub_.seen_under(resolve_path(kCommitMain, "README.md")).empty());
  EXPECT_EQ(m.n_downloaded, 5u);
  expect_snapshot_matches(kCommitMain);
  expect_snapshot_matches(kCommitV1);  // the older snapshot is untouched
}

TEST_F(Pull, IncludeAndExcludeFilters) {
  auto o = options();
  o.include = {"*.json", "sub/"};
  o.exclude = {"tokenizer*"};
  const hub::PullResult r = hub::pull(kRepo, o);
  EXPECT_EQ(r.n_files, 2u);
  EXPECT_EQ(snapshot_files(r.snapshot_dir), (std::vector<std::string>{"config.json", "sub/dir/notes.txt"}));
  EXPECT_TRUE(hub_.seen_under(cdn_path(kBigSha256)).empty());

  o.include = {"*.gguf"};
  o.exclude.clear();
  test::expect_invalid([&] { hub::pull(kRepo, o); }, {kRepo, "*.gguf", "none of its 6 files"});
}

// ---- the CLI --------------------------------------------------------------------------------------

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

TEST_F(Pull, CliPullPrintsTheSnapshotFolder) {
  const std::string base = quote(test::cli_path()) + " pull " + kRepo + " --endpoint " + hub_.endpoint() +
                           " --cache-dir " + quote(cache_.path());
  std::string out;
  ASSERT_EQ(test::run_command(base + " --no-progress 2>/dev/null", &out), 0) << out;
  EXPECT_EQ(out, snapshot(kCommitMain) + "\n");
  expect_snapshot_matches(kCommitMain);

  // Forced progress on a pipe: the total line and the summary on stderr; stdout stays the path.
  out.clear();
  ASSERT_EQ(test::run_command(base + " -r v1 -I '*.safetensors' --progress 2>&1 >/dev/null", &out), 0) << out;
  EXPECT_NE(out.find("model.safetensors"), std::string::npos) << out;
  EXPECT_NE(out.find("total 1/1 files"), std::string::npos) << out;
  EXPECT_NE(out.find("1 downloaded"), std::string::npos) << out;

  out.clear();
  EXPECT_EQ(test::run_command(quote(test::cli_path()) + " pull fixture/nope --endpoint " + hub_.endpoint() +
                                  " --cache-dir " + quote(cache_.path()) + " 2>&1",
                              &out),
            1);
  EXPECT_NE(out.find("contrail: error: repository 'fixture/nope'"), std::string::npos) << out;
  EXPECT_NE(out.find("not found"), std::string::npos) << out;
}

TEST(PullCli, HelpListsEveryOption) {
  std::string out;
  ASSERT_EQ(test::run_command(quote(test::cli_path()) + " pull --help", &out), 0);
  for (const char* opt : {"--revision", "--include", "--exclude", "--cache-dir", "--endpoint", "--token", "--retries",
                          "--progress", "--no-progress", "HF_ENDPOINT", "HF_TOKEN", "CONTRAIL_CACHE"})
    EXPECT_NE(out.find(opt), std::string::npos) << opt << " missing from:\n" << out;
}

}  // namespace
}  // namespace contrail
