// Shared helpers for tests: locating ../shared data and reading golden files.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "contrail/core/cpu_features.h"

namespace contrail::test {

// $CONTRAIL_DATA, else the ../shared beside the source tree.
std::string data_dir();
// data_dir() + "/" + rel; the test is skipped (GTEST_SKIP from the caller) if absent: use
// CONTRAIL_REQUIRE_DATA(path) to make absence a skip in dev and a failure in CI (CI=true).
std::string data_path(const std::string& rel);
bool exists(const std::string& path);
std::string read_text(const std::string& path);
std::vector<float> read_f32(const std::string& path);
std::vector<uint8_t> read_bytes(const std::string& path);
// Path of the built CLI binary.
std::string cli_path();
// A fresh directory under the gtest temp dir (unique per process), removed with everything in it.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "contrail");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Writes `bytes` to file(name) and returns that path; throws on failure.
  std::string write(const std::string& name, const std::vector<uint8_t>& bytes) const;
  std::vector<std::string> entries() const;  // file names in the directory, sorted

 private:
  std::string path_;
};

// Adds a gtest failure unless fn() throws contrail::InvalidArgument whose message contains every
// one of `parts`.
void expect_invalid(const std::function<void()>& fn, std::initializer_list<std::string> parts);

// Restores the active ISA when a test that switches it ends.
class ActiveIsaGuard {
 public:
  ActiveIsaGuard() : saved_(active_isa()) {}
  ~ActiveIsaGuard() { set_active_isa(saved_); }
  ActiveIsaGuard(const ActiveIsaGuard&) = delete;
  ActiveIsaGuard& operator=(const ActiveIsaGuard&) = delete;

 private:
  Isa saved_;
};

// Runs a shell command, captures stdout (stderr to stderr unless redirected); returns exit code.
int run_command(const std::string& cmd, std::string* out);

// True when running under CI (the CI environment variable is set, as CONTRAIL_REQUIRE_DATA reads it).
bool in_ci();

// For loaders of shared data that cannot return early from the test: adds a gtest failure for a
// missing `path` under CI, else records a skip (the test then ends as skipped unless it fails).
// Returns whether `path` exists.
bool expect_data(const std::string& path);

// A data-driven loop or case list must check something: adds a gtest failure naming `what` when
// `n_cases` is 0, in and outside CI (an empty list with the data present is a broken data set or
// loader, never a pass). Returns n_cases > 0. Use after every loop over cases read from
// CONTRAIL_DATA: `int n = 0; for (...) { ...; ++n; } test::require_cases(n, "stories260K cases");`
bool require_cases(size_t n_cases, const std::string& what);

}  // namespace contrail::test

// Skips the test when a shared data file is missing, except on CI (CI=true), where it fails.
#define CONTRAIL_REQUIRE_DATA(path)                                                            \
  do {                                                                                         \
    if (!::contrail::test::exists(path)) {                                                     \
      if (std::getenv("CI")) FAIL() << "missing shared data: " << (path);                      \
      GTEST_SKIP() << "missing shared data: " << (path) << " (set CONTRAIL_DATA)";             \
    }                                                                                          \
  } while (0)
