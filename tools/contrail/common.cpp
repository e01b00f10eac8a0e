#include "common.h"

#include <chrono>
#include <fstream>
#include <sstream>
#include <cstdio>

#include <fmt/format.h>
#include <unistd.h>

#include <climits>
#include <filesystem>

#include "contrail/core/cpu_features.h"
#include "contrail/core/error.h"

namespace contrail::cli {
namespace fs = std::filesystem;

void add_model_file_options(CLI::App& app, ModelOptions& o, bool model_required) {
  auto* m = app.add_option(
      "-m,--model", o.model,
      "Model: a GGUF file, a Hugging Face checkpoint directory (config.json, *.safetensors and tokenizer files,\n"
      "e.g. from `contrail pull`) or a llama2.c .bin (tokenizer.bin/tok*.bin beside it, or --tokenizer)" +
          std::string(model_required ? "" : " [default: models/stories260K.gguf]"));
  if (model_required) m->required();
  app.add_option("--tokenizer", o.tokenizer,
                 "llama2.c models only: tokenizer .bin (default: beside the model); GGUF files and Hugging Face\n"
                 "directories carry their own tokenizer, so it is an error with them");
}

void add_model_options(CLI::App& app, ModelOptions& o, bool model_required) {
  add_model_file_options(app, o, model_required);
  app.add_option("-t,--threads", o.threads, "Threads (default: one per core)")->check(CLI::Range(0, 1024));
  app.add_option("-c,--ctx-size", o.ctx, "Context size in tokens (default: the model's training context, at most 4096)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 22));
  app.add_option("--isa", o.isa, "Force the SIMD level: scalar, avx2 or avx512 (default: best available)")
      ->check(CLI::IsMember({"scalar", "avx2", "avx512"}));
}

std::string resolve_model(const ModelOptions& o) {
  if (!o.isa.empty()) set_active_isa(parse_isa(o.isa));
  if (!o.model.empty()) return o.model;
  std::vector<fs::path> candidates{fs::path("models") / "stories260K.gguf"};
  char exe[PATH_MAX] = {};
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) candidates.push_back(fs::path(std::string(exe, static_cast<size_t>(n))).parent_path().parent_path() /
                                  "models" / "stories260K.gguf");
  for (const auto& c : candidates)
    if (fs::exists(c)) return c.string();
  throw Error(
      "no model given and the default model models/stories260K.gguf was not found.\n"
      "  Run ./setup.sh with CONTRAIL_DATA pointing at a folder that has models/stories260K/, or pass -m MODEL\n"
      "  (a GGUF file, a Hugging Face checkpoint directory, or a llama2.c .bin with its tokenizer .bin beside it).");
}

SessionOptions session_options(const ModelOptions& o) {
  SessionOptions s;
  s.n_threads = o.threads;
  s.n_ctx = o.ctx;
  s.load.tokenizer_path = o.tokenizer;
  return s;
}

void add_sampling_options(CLI::App& app, SamplingParams& s) {
  app.add_option("--temp,--temperature", s.temperature, "Temperature; 0 = greedy")->capture_default_str();
  app.add_option("--top-k", s.top_k, "Top-k; 0 = off")->capture_default_str();
  app.add_option("--top-p", s.top_p, "Top-p (nucleus); 1 = off")->capture_default_str();
  app.add_option("--min-p", s.min_p, "Min-p; 0 = off")->capture_default_str();
  app.add_option("--repeat-penalty", s.repeat_penalty, "Repetition penalty; 1 = off")->capture_default_str();
  app.add_option("--repeat-last-n", s.penalty_last_n, "Tokens the penalties look back over; -1 = all")
      ->capture_default_str();
  app.add_option("--frequency-penalty", s.frequency_penalty, "Frequency penalty")->capture_default_str();
  app.add_option("--presence-penalty", s.presence_penalty, "Presence penalty")->capture_default_str();
  app.add_option("-s,--seed", s.seed, "RNG seed (same seed, same output)")->capture_default_str();
}

std::vector<int32_t> parse_id_list(const std::string& s) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    std::string item = s.substr(i, j - i);
    item.erase(0, item.find_first_not_of(" \t\n"));
    item.erase(item.find_last_not_of(" \t\n") + 1);
    if (!item.empty()) {
      size_t used = 0;
      long long v = 0;
      try {
        v = std::stoll(item, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != item.size() || v < 0 || v > INT32_MAX)
        throw InvalidArgument(fmt::format("bad token id '{}' in --tokens (expected integers 0..{})", item, INT32_MAX));
      ids.push_back(static_cast<int32_t>(v));
    }
    i = j + 1;
  }
  return ids;
}

std::string read_text_file(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(fmt::format("cannot read {} '{}'", what, path));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string human_bytes(double b) {
  if (b >= 1024.0 * 1048576.0) return fmt::format("{:.2f} GiB", b / (1024.0 * 1048576.0));
  return fmt::format("{:.1f} MiB", b / 1048576.0);
}

std::function<void(const ConvertProgress&)> convert_progress_bar(bool tty) {
  const auto start = std::chrono::steady_clock::now();
  return [start, tty](const ConvertProgress& p) {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double rate = secs > 0 ? p.bytes_done / secs : 0;  // output bytes per second
    const double eta = rate > 0 ? (p.bytes_total - p.bytes_done) / rate : 0;
    const double frac = p.bytes_total ? static_cast<double>(p.bytes_done) / p.bytes_total : 1.0;
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(frac * kWidth);
    const std::string line = fmt::format(
        "[{}{}] {:3.0f}% {}/{} tensors {} / {} {}/s ETA {:.0f}s {}", std::string(filled, '#'),
        std::string(kWidth - filled, ' '), frac * 100, p.index + 1, p.count, human_bytes(p.bytes_done),
        human_bytes(p.bytes_total), human_bytes(rate), eta, p.tensor);
    if (tty) {
      fmt::print(stderr, "\r\033[K{}", line);
      if (p.index + 1 == p.count) fmt::print(stderr, "\n");
    } else {
      fmt::print(stderr, "{}\n", line);
    }
    std::fflush(stderr);
  };
}

}  // namespace contrail::cli
