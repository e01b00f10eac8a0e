// `contrail bench`: prompt-processing and generation speed (median of repetitions, like
// llama-bench), the machine's read bandwidth, and the share of the bandwidth roofline reached in
// generation.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <filesystem>

#include "bench/svg_plot.h"
#include "bench_concurrency.h"
#include "common.h"
#include "contrail/core/cpu_features.h"
#include "contrail/core/error.h"
#include "contrail/kernels/membw.h"

namespace contrail::cli {
namespace {

struct BenchArgs {
  ModelOptions model;
  int64_t n_prompt = 128;
  int64_t n_gen = 128;
  int reps = 5;
  bool json = false;
  bool no_membw = false;
  std::vector<int64_t> concurrency;  // batch sweep levels; empty = none
  std::string plot;                  // SVG of the batch sweep
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Deterministic token ids spread over the vocabulary (content does not change the work done).
std::vector<int32_t> bench_tokens(int64_t n, int64_t n_vocab) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919 + 3) % n_vocab);
  return ids;
}

// Bytes a single decode step must read: every weight matrix once (the token embedding only one
// row, unless it doubles as the output projection), plus the KV cache up to `n_kv` positions.
double bytes_per_token(const ModelFile& mf, int64_t n_kv) {
  double b = 0;
  for (const auto& [name, t] : mf.tensors) {
    if (name == "token_embd.weight" && !mf.config.tied_embeddings)
      b += static_cast<double>(t.row_bytes());
    else
      b += static_cast<double>(t.nbytes());
  }
  const ModelConfig& c = mf.config;
  b += 2.0 * c.n_layer * static_cast<double>(n_kv) * c.n_head_kv * c.head_dim * sizeof(float);
  return b;
}

int bench(const BenchArgs& a) {
  if (a.reps < 1) throw InvalidArgument(fmt::format("--repetitions {} must be >= 1", a.reps));
  SessionOptions so = session_options(a.model);
  if (so.n_ctx <= 0) so.n_ctx = std::max<int64_t>(a.n_prompt + a.n_gen, 16);
  so.n_batch = std::max<int64_t>(a.n_prompt, 1);
  const std::string path = resolve_model(a.model);
  auto s = Session::load(path, so);
  const ModelConfig& c = s->config();
  using clock = std::chrono::steady_clock;
  std::vector<float> logits;

  std::vector<double> pp, tg;
  for (int r = 0; r <= a.reps; ++r) {  // r == 0 is the warm-up
    if (a.n_prompt > 0) {
      const auto ids = bench_tokens(a.n_prompt, c.n_vocab);
      s->reset();
      const auto t0 = clock::now();
      s->append(ids, logits);  // one forward: n_batch is n_prompt
      const double dt = std::chrono::duration<double>(clock::now() - t0).count();
      if (r > 0) pp.push_back(a.n_prompt / dt);
    }
    if (a.n_gen > 0) {
      s->reset();
      const auto ids = bench_tokens(a.n_gen, c.n_vocab);
      const auto t0 = clock::now();
      for (int64_t i = 0; i < a.n_gen; ++i)
        s->append(std::span<const int32_t>(&ids[static_cast<size_t>(i)], 1), logits);  // one decode step
      const double dt = std::chrono::duration<double>(clock::now() - t0).count();
      if (r > 0) tg.push_back(a.n_gen / dt);
    }
  }
  const double pp_tps = pp.empty() ? 0 : median(pp);
  const double tg_tps = tg.empty() ? 0 : median(tg);
  const double bw = a.no_membw ? 0 : measure_read_bandwidth_gbs(s->pool());
  const double bpt = bytes_per_token(s->model_file(), a.n_gen / 2);
  const double roofline = bw > 0 ? bw * 1e9 / bpt : 0;
  const double pct = roofline > 0 ? 100.0 * tg_tps / roofline : 0;

  std::vector<ConcurrencyResult> sweep;
  if (!a.concurrency.empty()) {
    sweep = concurrency_sweep(s->shared_model_file(), a.concurrency, a.n_prompt, a.n_gen, std::min(a.reps, 3), static_cast<int>(s->pool().size()));
  }
  if (!a.plot.empty()) {
    if (sweep.empty()) throw InvalidArgument("--plot draws the batch sweep: give --concurrency too");
    std::vector<double> xs;
    bench::LineSeries agg{"aggregate tokens/s (incl. prompts)", {}}, dec{"decode-phase tokens/s", {}};
    for (const auto& r : sweep) {
      xs.push_back(static_cast<double>(r.concurrency));
      agg.y.push_back(r.tokens_per_s);
      dec.y.push_back(r.decode_tokens_per_s);
    }
    const std::string title = fmt::format("{}: throughput vs concurrency ({} + {} tokens per request)",
                                          std::filesystem::path(path).filename().string(), a.n_prompt, a.n_gen);
    bench::write_file_atomic(a.plot, bench::lines_svg(title, "concurrent requests", "tokens/s", xs, {agg, dec}));
  }
  std::string sweep_json = "[";
  for (const auto& r : sweep)
    sweep_json += fmt::format("{}{{\"concurrency\": {}, \"tokens_per_s\": {:.3f}, \"per_request_tokens_per_s\": {:.3f}, "
                              "\"decode_tokens_per_s\": {:.3f}, \"wall_s\": {:.6f}}}",
                              sweep_json.size() > 1 ? ", " : "", r.concurrency, r.tokens_per_s, r.per_request_tps,
                              r.decode_tokens_per_s, r.wall_s);
  sweep_json += "]";

  size_t model_bytes = 0;
  int64_t params = 0;
  for (const auto& [name, t] : s->model_file().tensors) {
    model_bytes += t.nbytes();
    params += t.numel();
  }
  if (a.json) {
    fmt::print(
        "{{\"model\": \"{}\", \"model_bytes\": {}, \"params\": {}, \"threads\": {}, \"isa\": \"{}\", \"n_prompt\": {}, "
        "\"n_gen\": {}, \"repetitions\": {}, \"pp_tokens_per_s\": {:.3f}, \"tg_tokens_per_s\": {:.3f}, "
        "\"membw_gb_per_s\": {:.2f}, \"bytes_per_token\": {:.0f}, \"roofline_tokens_per_s\": {:.3f}, "
        "\"roofline_pct\": {:.2f}, \"concurrency\": {}}}\n",
        path, model_bytes, params, s->pool().size(), isa_name(active_isa()), a.n_prompt, a.n_gen, a.reps, pp_tps,
        tg_tps, bw, bpt, roofline, pct, sweep_json);
    return 0;
  }
  fmt::print("model: {} ({} {}, {:.2f} MiB, {:.2f} M params) | threads {} | kernels {} | cpu {}\n", path, c.arch,
             c.name, model_bytes / 1048576.0, params / 1e6, s->pool().size(), isa_name(active_isa()),
             cpu_features().brand);
  fmt::print("| test   | tokens/s (median of {}) | min      | max      |\n|--------|-------------|----------|----------|\n",
             a.reps);
  if (!pp.empty())
    fmt::print("| pp{:<4} | {:>11.1f} | {:>8.1f} | {:>8.1f} |\n", a.n_prompt, pp_tps, *std::min_element(pp.begin(), pp.end()),
               *std::max_element(pp.begin(), pp.end()));
  if (!tg.empty())
    fmt::print("| tg{:<4} | {:>11.1f} | {:>8.1f} | {:>8.1f} |\n", a.n_gen, tg_tps, *std::min_element(tg.begin(), tg.end()),
               *std::max_element(tg.begin(), tg.end()));
  if (bw > 0)
    fmt::print("memory read bandwidth {:.1f} GB/s; a generated token reads {:.2f} MB -> roofline {:.1f} tokens/s; "
               "generation reaches {:.1f}% of it\n",
               bw, bpt / 1e6, roofline, pct);
  if (!sweep.empty()) {
    fmt::print("\nbatch sweep (engine, {} prompt + {} generated tokens per request, greedy):\n", a.n_prompt, a.n_gen);
    fmt::print("| concurrent | aggregate tokens/s (incl. prompts) | per request | decode-phase tokens/s | x single (decode) |\n"
               "|---|---|---|---|---|\n");
    for (const auto& r : sweep)
      fmt::print("| {} | {:.1f} | {:.1f} | {:.1f} | {:.2f} |\n", r.concurrency, r.tokens_per_s, r.per_request_tps,
                 r.decode_tokens_per_s,
                 sweep.front().decode_tokens_per_s > 0 ? r.decode_tokens_per_s / sweep.front().decode_tokens_per_s : 0.0);
  }
  return 0;
}

}  // namespace

void register_bench(CLI::App& app, int& status) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* sub = app.add_subcommand("bench", "Measure prompt processing and generation speed (tokens/s)");
  add_model_options(*sub, args->model);
  sub->add_option("-p,--n-prompt", args->n_prompt, "Prompt tokens per pp run (0 = skip)")
      ->capture_default_str()->check(CLI::Range(int64_t{0}, int64_t{1} << 16));
  sub->add_option("-n,--n-gen", args->n_gen, "Generated tokens per tg run (0 = skip)")
      ->capture_default_str()->check(CLI::Range(int64_t{0}, int64_t{1} << 16));
  sub->add_option("-r,--repetitions", args->reps, "Repetitions (median reported)")->capture_default_str()
      ->check(CLI::Range(1, 1000));
  sub->add_flag("--json", args->json, "Print results as one JSON object");
  sub->add_flag("--no-membw", args->no_membw, "Skip the memory bandwidth probe");
  sub->add_option("--concurrency", args->concurrency,
                  "Batch sweep through the serving engine, e.g. --concurrency 1,4,16: aggregate generation tokens/s "
                  "with that many requests in flight (-p prompt, -n generated tokens each)")
      ->delimiter(',')
      ->check(CLI::Range(int64_t{1}, int64_t{1024}));
  sub->add_option("--plot", args->plot, "Write the batch sweep as an SVG chart (throughput vs concurrency)");
  CLI::App* serve = register_bench_serve(*sub, status);
  // CLI11 runs the parent's callback after a nested subcommand's: plain `bench` only without `serve`.
  sub->callback([args, serve, &status] {
    if (!serve->parsed()) status = bench(*args);
  });
}

}  // namespace contrail::cli
