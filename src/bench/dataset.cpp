// ShareGPT loading, JetStream's filters and sampling, and the synthetic request sets.
#include "bench/dataset.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <sstream>

#include "contrail/core/error.h"

namespace contrail::bench {
namespace {

using json = nlohmann::json;

// Simple English words (the default model was trained on children's stories).
constexpr const char* kWords[] = {
    "the",   "a",     "little", "girl",  "boy",   "dog",   "cat",    "saw",   "big",   "red",   "ball",
    "tree",  "sun",   "happy",  "sad",   "went",  "to",    "park",   "and",   "played", "with", "her",
    "his",   "friend", "one",   "day",   "bird",  "flew",  "over",   "house", "mom",   "said",  "look",
    "at",    "blue",  "sky",    "they",  "ran",   "fast",  "found",  "box",   "toy",   "car",   "jumped",
    "in",    "water", "fish",   "swam",  "green", "grass", "smiled", "laughed", "sweet", "cake", "ate",
    "time",  "was",   "very",   "good",  "nice",  "small", "shiny",  "star",  "night"};
constexpr size_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);

std::string join_words(const std::vector<size_t>& w, size_t k) {
  std::string s;
  for (size_t i = 0; i < k; ++i) {
    if (i) s += ' ';
    s += kWords[w[i]];
  }
  return s;
}

// Longest prefix (in words) of a random word sequence such that count(prefix + text) <= limit.
// Returns the text (prefix + words) and its exact count.
std::pair<std::string, int64_t> fit_words(const std::string& prefix, int64_t limit, int64_t suffix_target,
                                          std::mt19937_64& rng, const TokenCounter& count) {
  std::vector<size_t> w(static_cast<size_t>(2 * suffix_target + 8));
  std::uniform_int_distribution<size_t> pick(0, kNumWords - 1);
  for (auto& x : w) x = pick(rng);
  auto text = [&](size_t k) { return prefix.empty() ? join_words(w, k) : prefix + " " + join_words(w, k); };
  size_t lo = 0, hi = w.size();  // invariant: count(text(lo)) <= limit (lo = 0 assumed)
  while (lo < hi) {
    const size_t mid = (lo + hi + 1) / 2;
    if (count(text(mid), true) <= limit) lo = mid;
    else hi = mid - 1;
  }
  const std::string t = text(lo);
  return {t, count(t, true)};
}

void check_positive(const char* name, int64_t v) {
  if (v < 1) throw InvalidArgument(fmt::format("{} is {}; it must be >= 1", name, v));
}

}  // namespace

std::vector<std::pair<std::string, std::string>> load_sharegpt(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(fmt::format("cannot read the dataset '{}'", path));
  std::stringstream ss;
  ss << f.rdbuf();
  json doc;
  try {
    doc = json::parse(ss.str());
  } catch (const std::exception& e) {
    throw Error(fmt::format("dataset '{}' is not valid JSON: {}", path, e.what()));
  }
  if (!doc.is_array())
    throw Error(fmt::format("dataset '{}' must be a JSON list of {{\"conversations\": [...]}} objects (ShareGPT), got {}",
                            path, doc.type_name()));
  std::vector<std::pair<std::string, std::string>> out;
  for (const json& e : doc) {
    if (!e.is_object() || !e.contains("conversations") || !e["conversations"].is_array()) continue;
    const json& c = e["conversations"];
    if (c.size() < 2) continue;
    auto turn = [&](size_t i, std::string& v, std::string& from) {
      if (!c[i].is_object() || !c[i].contains("value") || !c[i]["value"].is_string()) return false;
      v = c[i]["value"].get<std::string>();
      from = c[i].contains("from") && c[i]["from"].is_string() ? c[i]["from"].get<std::string>() : "";
      return true;
    };
    std::string p, r, from0, from1;
    if (!turn(0, p, from0) || !turn(1, r, from1) || from0 != "human") continue;
    out.emplace_back(std::move(p), std::move(r));
  }
  return out;
}

std::vector<BenchRequest> sample_sharegpt(const std::vector<std::pair<std::string, std::string>>& pairs,
                                          int64_t num_prompts, uint64_t seed, const FilterOptions& f,
                                          const TokenCounter& count, FilterStats* stats) {
  check_positive("--num-prompts", num_prompts);
  FilterStats st;
  std::vector<size_t> order(pairs.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<BenchRequest> out;
  for (size_t idx : order) {
    if (static_cast<int64_t>(out.size()) >= num_prompts) break;
    const auto& [prompt, ref] = pairs[idx];
    ++st.counted;
    BenchRequest r;
    r.prompt = prompt;
    r.prompt_len = count(prompt, true);
    r.ref_output_len = count(ref, false);
    if (r.prompt_len < f.min_len || r.ref_output_len < f.min_len) {
      ++st.too_short;
      continue;
    }
    if (r.prompt_len > f.max_input_length) {
      ++st.too_long_input;
      continue;
    }
    if (r.prompt_len + r.ref_output_len > f.max_target_length) {
      ++st.too_long_total;
      continue;
    }
    r.output_len = f.max_output_length > 0 ? std::min(r.ref_output_len, f.max_output_length) : r.ref_output_len;
    if (f.max_model_len > 0 && r.prompt_len + r.output_len > f.max_model_len) {
      ++st.over_context;
      continue;
    }
    out.push_back(std::move(r));
  }
  if (out.empty())
    throw InvalidArgument(fmt::format(
        "no ShareGPT pair passes the filters ({} counted: {} shorter than {} tokens, {} prompts over "
        "--max-input-length {}, {} over --max-target-length {}, {} over the server context {})",
        st.counted, st.too_short, f.min_len, st.too_long_input, f.max_input_length, st.too_long_total,
        f.max_target_length, st.over_context, f.max_model_len));
  const size_t n_pass = out.size();
  for (size_t i = 0; static_cast<int64_t>(out.size()) < num_prompts; ++i) {
    st.repeated = true;
    out.push_back(out[i % n_pass]);
  }
  if (stats) *stats = st;
  return out;
}

std::vector<BenchRequest> random_requests(int64_t num_prompts, int64_t input_len, int64_t output_len, uint64_t seed,
                                          const TokenCounter& count) {
  check_positive("--num-prompts", num_prompts);
  check_positive("--random-input-len", input_len);
  check_positive("--random-output-len", output_len);
  std::mt19937_64 rng(seed);
  std::vector<BenchRequest> out;
  for (int64_t i = 0; i < num_prompts; ++i) {
    auto [text, n] = fit_words("", input_len, input_len, rng, count);
    out.push_back({std::move(text), n, output_len, 0});
  }
  return out;
}

std::vector<BenchRequest> shared_prefix_requests(int64_t num_prompts, int64_t prefix_len, int64_t suffix_len,
                                                 int64_t output_len, uint64_t seed, const TokenCounter& count) {
  check_positive("--num-prompts", num_prompts);
  check_positive("--shared-prefix-len", prefix_len);
  check_positive("--random-input-len", suffix_len);
  check_positive("--random-output-len", output_len);
  std::mt19937_64 rng(seed);
  const auto [prefix, n_prefix] = fit_words("", prefix_len, prefix_len, rng, count);
  std::vector<BenchRequest> out;
  for (int64_t i = 0; i < num_prompts; ++i) {
    // A numbered marker keeps suffixes distinct even if the random words repeat.
    const std::string head = fmt::format("{} {}:", prefix, i);
    auto [text, n] = fit_words(head, n_prefix + suffix_len, suffix_len, rng, count);
    out.push_back({std::move(text), n, output_len, 0});
  }
  return out;
}

}  // namespace contrail::bench
