#include "golden.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "contrail/sampling/sampler.h"

namespace contrail::test {

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open " + path);
  return nlohmann::json::parse(f);
}

LogitsDiff max_abs_diff(const std::vector<float>& a, const std::vector<float>& b, int64_t n_cols) {
  LogitsDiff d;
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const double e = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (!(e <= d.max_abs)) {  // NaN counts as a difference
      d.max_abs = std::isnan(e) ? INFINITY : e;
      d.row = static_cast<int64_t>(i) / n_cols;
      d.col = static_cast<int64_t>(i) % n_cols;
    }
  }
  return d;
}

int check_greedy(Session& s, const std::vector<int32_t>& ids, const nlohmann::json& golden, double tol) {
  const auto want = golden.at("greedy_ids").get<std::vector<int32_t>>();
  const auto& top5 = golden.at("greedy_top5");
  const int64_t n_vocab = s.config().n_vocab;
  s.cache().clear();
  std::vector<float> logits;
  s.transformer().forward(ids, s.cache(), s.pool(), logits, false);
  int matched = 0;
  for (size_t step = 0; step < want.size(); ++step) {
    const int32_t got = argmax(std::span<const float>(logits.data(), static_cast<size_t>(n_vocab)));
    const double ref_top1 = top5[step][0][1].get<double>();
    const double margin = ref_top1 - top5[step][1][1].get<double>();
    // Our logit for the reference's choice must agree with the reference value.
    EXPECT_NEAR(logits[static_cast<size_t>(want[step])], ref_top1, tol) << "greedy step " << step;
    if (got != want[step]) {
      EXPECT_LE(margin, tol) << "greedy step " << step << ": got token " << got << ", reference " << want[step]
                             << " with a clear margin " << margin;
      break;  // contexts differ from here on
    }
    ++matched;
    const int32_t one[1] = {got};
    s.transformer().forward(one, s.cache(), s.pool(), logits, false);
  }
  return matched;
}

}  // namespace contrail::test
