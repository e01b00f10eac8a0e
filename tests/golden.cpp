#include "golden.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "test_util.h"

#include "contrail/sampling/sampler.h"

namespace contrail::test {

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open " + path);
  return nlohmann::json::parse(f);
}

std::vector<std::string> stories_cases() {
  std::vector<std::string> cases;
  const std::string dir = data_path("golden/stories260K/llama2c");
  if (!expect_data(dir)) return cases;
  const std::string suffix = ".prompt.txt";
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      cases.push_back(name.substr(0, name.size() - suffix.size()));
  }
  std::sort(cases.begin(), cases.end());
  require_cases(cases.size(), dir + ": <case>.prompt.txt files");
  return cases;
}

std::vector<std::string> tiny_random_sequences(const std::string& arch) {
  std::vector<std::string> names;
  const std::string path = data_path("golden/tiny-random/" + arch + "/golden/summary.json");
  const auto summary = read_json(path);  // throws "cannot open <path>" when missing
  for (const auto& seq : summary.at("sequences")) names.push_back(seq.at("name").get<std::string>());
  // Thrown, not returned empty: callers may take .front().
  if (names.empty()) throw std::runtime_error(path + ": 'sequences' lists no sequence");
  return names;
}

LogitsDiff max_abs_diff(const std::vector<float>& a, const std::vector<float>& b, int64_t n_cols) {
  LogitsDiff d;
  const size_t n = std::min(a.size(), b.size());
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const double e = std::fabs(static_cast<double>(a[i]) - b[i]);
    sum += std::isnan(e) ? INFINITY : e;
    if (!(e <= d.max_abs)) {  // NaN counts as a difference
      d.max_abs = std::isnan(e) ? INFINITY : e;
      d.row = static_cast<int64_t>(i) / n_cols;
      d.col = static_cast<int64_t>(i) % n_cols;
    }
  }
  d.mean_abs = n ? sum / static_cast<double>(n) : 0;
  return d;
}

int check_greedy(Session& s, const std::vector<int32_t>& ids, const nlohmann::json& golden, double tol,
                 double* max_step_diff) {
  const auto want = golden.at("greedy_ids").get<std::vector<int32_t>>();
  const auto& top5 = golden.at("greedy_top5");
  const int64_t n_vocab = s.config().n_vocab;
  s.reset();
  std::vector<float> logits;
  s.append(ids, logits);
  int matched = 0;
  if (max_step_diff) *max_step_diff = 0;
  require_cases(want.size(), "golden greedy_ids");
  for (size_t step = 0; step < want.size(); ++step) {
    const int32_t got = argmax(std::span<const float>(logits.data(), static_cast<size_t>(n_vocab)));
    const double ref_top1 = top5[step][0][1].get<double>();
    const double margin = ref_top1 - top5[step][1][1].get<double>();
    // Our logit for the reference's choice must agree with the reference value.
    const double ours = logits[static_cast<size_t>(want[step])];
    EXPECT_NEAR(ours, ref_top1, tol) << "greedy step " << step;
    if (max_step_diff) *max_step_diff = std::max(*max_step_diff, std::fabs(ours - ref_top1));
    if (got != want[step]) {
      EXPECT_LE(margin, tol) << "greedy step " << step << ": got token " << got << ", reference " << want[step]
                             << " with a clear margin " << margin;
      break;  // contexts differ from here on
    }
    ++matched;
    const int32_t one[1] = {got};
    s.append(one, logits);
  }
  return matched;
}

}  // namespace contrail::test
