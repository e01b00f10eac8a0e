// Reading the golden reference files of ../shared/golden (see its MANIFEST.md) and the shared
// comparison rules: logits within an absolute tolerance, greedy ids equal while the reference's
// top1-top2 margin exceeds that tolerance.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "contrail/runtime/session.h"

namespace contrail::test {

nlohmann::json read_json(const std::string& path);

// Case names of golden/stories260K/llama2c (every <case>.prompt.txt there), sorted. A missing
// directory is a gtest failure under CI (a recorded skip otherwise, see expect_data); a directory
// without cases is a failure everywhere. Callers still check their loop ran (require_cases).
std::vector<std::string> stories_cases();
// Sequence names listed in golden/tiny-random/<arch>/golden/summary.json, never empty: throws
// (a test failure) naming the file when it is missing or lists no sequence.
std::vector<std::string> tiny_random_sequences(const std::string& arch);

// Largest |a - b| (NaN counts as infinite) with its position, and the mean |a - b|: a few
// isolated outliers (e.g. one activation rounding step of a quantized matmul) move the max but
// barely the mean, while a systematic error (a wrong constant) moves both.
struct LogitsDiff {
  double max_abs = 0;
  double mean_abs = 0;
  int64_t row = -1, col = -1;
};
LogitsDiff max_abs_diff(const std::vector<float>& a, const std::vector<float>& b, int64_t n_cols);

// Greedy continuation from `ids` for golden["greedy_ids"].size() steps (never stopping at EOS),
// checked against golden greedy_ids/greedy_top5: equal tokens required while the golden margin
// exceeds `tol`; at the first allowed divergence the comparison ends. Adds gtest failures.
// Returns the number of steps that matched exactly. `max_step_diff` (optional) receives the
// largest |our logit - golden logit| of the golden's choice over the steps compared.
int check_greedy(Session& s, const std::vector<int32_t>& ids, const nlohmann::json& golden, double tol,
                 double* max_step_diff = nullptr);

}  // namespace contrail::test
