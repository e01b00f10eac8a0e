#include "test_util.h"

#include "contrail/core/error.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace contrail::test {

std::string data_dir() {
  if (const char* d = std::getenv("CONTRAIL_DATA"); d && *d) return d;
  return CONTRAIL_DEFAULT_DATA;
}

std::string data_path(const std::string& rel) { return data_dir() + "/" + rel; }

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::string read_text(const std::string& path) {
  auto b = read_bytes(path);
  return std::string(b.begin(), b.end());
}

std::vector<float> read_f32(const std::string& path) {
  auto b = read_bytes(path);
  if (b.size() % 4) throw std::runtime_error(path + ": size not a multiple of 4");
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), b.size());
  return v;
}

TempDir::TempDir(const std::string& prefix) {
  std::string tmpl = ::testing::TempDir() + prefix + "_XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::vector<uint8_t>& bytes) const {
  const std::string p = file(name);
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + p);
  return p;
}

std::vector<std::string> TempDir::entries() const {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(path_)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

void expect_invalid(const std::function<void()>& fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

std::string cli_path() { return CONTRAIL_CLI_PATH; }

int run_command(const std::string& cmd, std::string* out) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0)
    if (out) out->append(buf.data(), n);
  const int st = ::pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

bool in_ci() { return std::getenv("CI") != nullptr; }

bool expect_data(const std::string& path) {
  if (exists(path)) return true;
  if (in_ci())
    ADD_FAILURE() << "missing shared data: " << path << " (CI=true: every expected data set must be present)";
  else
    [&] { GTEST_SKIP() << "missing shared data: " << path << " (set CONTRAIL_DATA)"; }();
  return false;
}

bool require_cases(size_t n_cases, const std::string& what) {
  if (n_cases > 0) return true;
  ADD_FAILURE() << what << ": ran 0 cases (an empty case list checks nothing)";
  return false;
}

}  // namespace contrail::test
