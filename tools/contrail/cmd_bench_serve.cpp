// `contrail bench serve`: the serving benchmark against any OpenAI-compatible /v1/completions
// endpoint (streaming), following JetStream's benchmarks/benchmark_serving.py (ShareGPT first two
// turns, its length filters, Poisson arrivals, TTFT/TPOT) and vLLM's benchmarks/benchmark_serving.py
// (TPOT excluding the first token, ITL, E2EL, goodput, --max-concurrency). The logic is in
// src/bench/; this file maps flags, prints the progress bar (stderr) and the table (stdout), and
// writes --result-json / --plot.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <limits>
#include <nlohmann/json.hpp>

#include "bench/client.h"
#include "bench/dataset.h"
#include "bench/metrics.h"
#include "bench/report.h"
#include "bench/svg_plot.h"
#include "common.h"
#include "contrail/core/error.h"
#include "contrail/model/model_file.h"
#include "contrail/tokenizer/tokenizer.h"

namespace contrail::cli {
namespace {

using json = nlohmann::json;

struct ServeBenchArgs {
  bench::Endpoint ep;
  std::string endpoint = "/v1/completions";
  std::string dataset = "sharegpt";
  std::string dataset_path;
  int64_t num_prompts = 1000;
  std::string request_rate = "inf";
  int64_t max_concurrency = 0;
  int64_t max_input_length = 1024;
  int64_t max_target_length = 2048;
  int64_t max_output_length = 1024;
  int64_t random_input_len = 128;
  int64_t random_output_len = 128;
  int64_t shared_prefix_len = 256;
  uint64_t seed = 0;
  int64_t warmup = 0;
  std::vector<std::string> goodput;
  std::string result_json;
  bool save_requests = false;
  std::string plot;
  std::string token_counter;  // server | local; empty: local when -m given
  std::string tokenizer_model;
  bool no_ignore_eos = false;
  bool no_progress = false;
};

double parse_rate(const std::string& s) {
  if (s == "inf" || s == "INF" || s == "Inf") return std::numeric_limits<double>::infinity();
  try {
    size_t used = 0;
    const double v = std::stod(s, &used);
    if (used == s.size() && v > 0 && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  throw InvalidArgument(fmt::format("--request-rate '{}' must be a number > 0 (requests/s) or 'inf'", s));
}

// Progress bar with rate and ETA on stderr: redrawn in place on a terminal, every 10% otherwise.
bench::Progress progress_bar(bool enabled, double t0) {
  if (!enabled) return {};
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  auto last_decile = std::make_shared<int64_t>(-1);
  return [tty, t0, last_decile](int64_t done, int64_t failed, int64_t total) {
    const double el = bench::now_s() - t0;
    const double rate = el > 0 ? done / el : 0;
    const double eta = rate > 0 ? (total - done) / rate : 0;
    const int width = 30;
    const int fill = total > 0 ? static_cast<int>(width * done / total) : width;
    const std::string line = fmt::format("[{}{}] {}/{} ({} failed) {:.2f} req/s, elapsed {:.1f}s, ETA {:.1f}s",
                                         std::string(static_cast<size_t>(fill), '#'),
                                         std::string(static_cast<size_t>(width - fill), '.'), done, total, failed,
                                         rate, el, eta);
    if (tty) {
      fmt::print(stderr, "\r{}{}", line, done == total ? "\n" : "");
    } else {
      const int64_t decile = total > 0 ? 10 * done / total : 10;
      if (decile != *last_decile) {
        *last_decile = decile;
        fmt::print(stderr, "{}\n", line);
      }
    }
    std::fflush(stderr);
  };
}

// Every option given must act: options of plain `contrail bench` (read only without `serve`) and
// options that only one dataset or mode reads are rejected instead of being silently ignored.
void reject_unused_options(const CLI::App& bench, const CLI::App& sub, const ServeBenchArgs& a) {
  for (const CLI::Option* o : bench.get_options())
    if (o != bench.get_help_ptr() && o->count() > 0)
      throw InvalidArgument(fmt::format("{} is an option of `contrail bench` (the local speed test) and does nothing "
                                        "with `bench serve`; give `bench serve` options after `serve`",
                                        o->get_name()));
  const bool sharegpt = a.dataset == "sharegpt", random = a.dataset == "random",
             shared_prefix = a.dataset == "shared-prefix";
  if (!sharegpt && !random && !shared_prefix) return;  // bench_serve names the valid datasets
  const auto only = [&sub](const char* opt, bool applies, const char* where) {
    if (sub.count(opt) > 0 && !applies)
      throw InvalidArgument(fmt::format("{} applies only {}; here it would be ignored", opt, where));
  };
  only("--dataset-path", sharegpt, "to --dataset sharegpt");
  only("--max-input-length", sharegpt, "to --dataset sharegpt");
  only("--max-target-length", sharegpt, "to --dataset sharegpt");
  only("--random-input-len", random || shared_prefix, "to --dataset random and shared-prefix");
  only("--random-output-len", random || shared_prefix, "to --dataset random and shared-prefix");
  only("--shared-prefix-len", shared_prefix, "to --dataset shared-prefix");
  only("--save-requests", !a.result_json.empty(), "with --result-json (the records go into that file)");
  only("--tokenizer-model", a.token_counter != "server", "to --token-counter local (the default when -m is given)");
}

int bench_serve(ServeBenchArgs a) {
  bench::Endpoint& ep = a.ep;
  ep.path = a.endpoint;
  ep.ignore_eos = !a.no_ignore_eos;
  const double rate = parse_rate(a.request_rate);
  const bench::Slo slo = bench::parse_goodput(a.goodput);
  if (a.num_prompts < 1) throw InvalidArgument(fmt::format("--num-prompts {} must be >= 1", a.num_prompts));
  if (a.max_concurrency < 0) throw InvalidArgument(fmt::format("--max-concurrency {} must be >= 0", a.max_concurrency));
  if (a.warmup < 0) throw InvalidArgument(fmt::format("--warmup {} must be >= 0", a.warmup));
  if (a.dataset == "sharegpt" && a.dataset_path.empty())
    throw InvalidArgument("--dataset sharegpt needs --dataset-path FILE (a ShareGPT JSON list)");
  if (ep.path.empty() || ep.path[0] != '/')
    throw InvalidArgument(fmt::format("--endpoint '{}' must start with '/'", ep.path));

  const bench::ServerInfo info = bench::probe_server(ep);
  std::string counter_kind = a.token_counter.empty() ? (a.tokenizer_model.empty() ? "server" : "local") : a.token_counter;
  bench::TokenCounter count;
  std::shared_ptr<Tokenizer> tok;
  if (counter_kind == "local") {
    if (a.tokenizer_model.empty()) throw InvalidArgument("--token-counter local needs -m MODEL (its tokenizer counts tokens)");
    tok = std::make_shared<Tokenizer>(load_model_vocab(a.tokenizer_model));  // a vocab-only GGUF will do
    count = [tok](const std::string& text, bool add_special) {
      return static_cast<int64_t>(tok->encode(text, add_special).size());
    };
  } else if (counter_kind == "server") {
    count = bench::server_token_counter(ep);
  } else {
    throw InvalidArgument(fmt::format("--token-counter '{}' must be 'server' or 'local'", counter_kind));
  }

  std::vector<bench::BenchRequest> reqs;
  bench::FilterStats fs;
  if (a.dataset == "sharegpt") {
    bench::FilterOptions f;
    f.max_input_length = a.max_input_length;
    f.max_target_length = a.max_target_length;
    f.max_output_length = a.max_output_length;
    f.max_model_len = info.max_model_len;
    reqs = bench::sample_sharegpt(bench::load_sharegpt(a.dataset_path), a.num_prompts, a.seed, f, count, &fs);
    fmt::print(stderr, "dataset: {} pairs counted, {} too short, {} over --max-input-length, {} over --max-target-length, "
                       "{} over the server context ({}){}\n",
               fs.counted, fs.too_short, fs.too_long_input, fs.too_long_total, fs.over_context, info.max_model_len,
               fs.repeated ? "; fewer pairs than --num-prompts passed, repeating them" : "");
  } else if (a.dataset == "random") {
    reqs = bench::random_requests(a.num_prompts, a.random_input_len, a.random_output_len, a.seed, count);
  } else if (a.dataset == "shared-prefix") {
    reqs = bench::shared_prefix_requests(a.num_prompts, a.shared_prefix_len, a.random_input_len, a.random_output_len,
                                         a.seed, count);
  } else {
    throw InvalidArgument(fmt::format("--dataset '{}' must be sharegpt, random or shared-prefix", a.dataset));
  }
  if (a.max_output_length > 0)
    for (auto& r : reqs) r.output_len = std::min(r.output_len, a.max_output_length);

  bench::RunOptions ro;
  ro.request_rate = rate;
  ro.max_concurrency = a.max_concurrency;
  ro.seed = a.seed;
  if (a.warmup > 0) {
    std::vector<bench::BenchRequest> w;
    for (int64_t i = 0; i < a.warmup; ++i) w.push_back(reqs[static_cast<size_t>(i) % reqs.size()]);
    bench::RunOptions wo = ro;
    wo.request_rate = std::numeric_limits<double>::infinity();
    const auto wr = bench::run_benchmark(ep, w, wo);
    int64_t wf = 0;
    for (const auto& r : wr) wf += r.success ? 0 : 1;
    fmt::print(stderr, "warm-up: {} requests ({} failed), not counted\n", w.size(), wf);
  }

  fmt::print(stderr, "benchmark: {} requests to {}{}, request rate {}, max concurrency {}\n", reqs.size(), ep.base_url,
             ep.path, a.request_rate, a.max_concurrency > 0 ? std::to_string(a.max_concurrency) : "unlimited");
  const auto records = bench::run_benchmark(ep, reqs, ro, progress_bar(!a.no_progress, bench::now_s()));
  const double dur = bench::benchmark_duration(records);
  const bench::BenchMetrics m = bench::compute_metrics(records, dur, slo);

  fmt::print("Traffic request rate: {}\nMax concurrency: {}\nToken counts: {}\n", a.request_rate,
             a.max_concurrency > 0 ? std::to_string(a.max_concurrency) : "unlimited",
             counter_kind == "server" ? "server POST /tokenize" : "local tokenizer of " + a.tokenizer_model);
  fmt::print("{}", bench::result_table(m, slo, static_cast<int64_t>(records.size())));
  for (const auto& r : records)
    if (!r.success) {
      fmt::print(stderr, "first failure: {}\n", r.error);
      break;
    }

  if (!a.result_json.empty()) {
    char date[32];
    const std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y%m%d-%H%M%S", std::localtime(&now));
    json cfg = {{"date", date},
                {"backend", "openai-completions"},
                {"base_url", ep.base_url},
                {"endpoint", ep.path},
                {"model", ep.model.empty() ? info.model_id : ep.model},
                {"dataset", a.dataset},
                {"dataset_path", a.dataset_path},
                {"num_prompts", a.num_prompts},
                {"request_rate", std::isinf(rate) ? json("inf") : json(rate)},
                {"max_concurrency", a.max_concurrency},
                {"max_input_length", a.max_input_length},
                {"max_target_length", a.max_target_length},
                {"max_output_length", a.max_output_length},
                {"server_max_model_len", info.max_model_len},
                {"seed", a.seed},
                {"warmup", a.warmup},
                {"token_counter", counter_kind},
                {"ignore_eos", ep.ignore_eos},
                {"temperature", ep.temperature}};
    if (a.dataset != "sharegpt") {
      cfg["random_input_len"] = a.random_input_len;
      cfg["random_output_len"] = a.random_output_len;
      if (a.dataset == "shared-prefix") cfg["shared_prefix_len"] = a.shared_prefix_len;
    }
    bench::write_file_atomic(a.result_json, bench::result_json(cfg.dump(), m, slo, static_cast<int64_t>(records.size()),
                                                               records, a.save_requests));
    fmt::print(stderr, "results written to {}\n", a.result_json);
  }
  if (!a.plot.empty()) {
    const std::vector<bench::PlotSeries> s = {
        {"TTFT", m.ttft.median * 1e3, m.ttft.p90 * 1e3, m.ttft.p99 * 1e3},
        {"TPOT", m.tpot_vllm.median * 1e3, m.tpot_vllm.p90 * 1e3, m.tpot_vllm.p99 * 1e3},
        {"E2E latency", m.e2el.median * 1e3, m.e2el.p90 * 1e3, m.e2el.p99 * 1e3}};
    bench::write_file_atomic(
        a.plot, bench::latency_svg(fmt::format("{} requests, rate {}, {} completed in {:.2f} s", records.size(),
                                               a.request_rate, m.completed, m.duration_s),
                                   s));
    fmt::print(stderr, "plot written to {}\n", a.plot);
  }
  return m.completed > 0 ? 0 : 1;
}

}  // namespace

CLI::App* register_bench_serve(CLI::App& bench, int& status) {
  auto a = std::make_shared<ServeBenchArgs>();
  CLI::App* sub = bench.add_subcommand(
      "serve",
      "Serving benchmark of an OpenAI-compatible /v1/completions endpoint (streaming): TTFT, TPOT, ITL, "
      "end-to-end latency, throughput and goodput under Poisson arrivals (JetStream/vLLM method)");
  sub->add_option("--base-url", a->ep.base_url, "Server URL")->capture_default_str();
  sub->add_option("--endpoint", a->endpoint, "Completions path")->capture_default_str();
  sub->add_option("--model", a->ep.model, "Model name sent as \"model\" (optional)");
  sub->add_option("--api-key", a->ep.api_key, "Sent as 'Authorization: Bearer KEY'");
  sub->add_option("--dataset", a->dataset, "sharegpt | random | shared-prefix")->capture_default_str();
  sub->add_option("--dataset-path", a->dataset_path, "ShareGPT JSON file (--dataset sharegpt)");
  sub->add_option("--num-prompts", a->num_prompts, "Requests in the benchmark")->capture_default_str();
  sub->add_option("--request-rate", a->request_rate,
                  "Requests/s of the Poisson arrivals (exponential gaps, mean 1/rate); inf = all at once")
      ->capture_default_str();
  sub->add_option("--max-concurrency", a->max_concurrency, "Most requests in flight (0 = unlimited)")
      ->capture_default_str();
  sub->add_option("--max-input-length", a->max_input_length, "Drop ShareGPT prompts longer than this (tokens)")
      ->capture_default_str();
  sub->add_option("--max-target-length", a->max_target_length,
                  "Drop ShareGPT pairs whose prompt + reference reply exceed this (tokens)")
      ->capture_default_str();
  sub->add_option("--max-output-length", a->max_output_length, "Cap on each request's max_tokens (0 = no cap)")
      ->capture_default_str();
  sub->add_option("--random-input-len", a->random_input_len,
                  "Prompt tokens (random) / suffix tokens (shared-prefix)")->capture_default_str();
  sub->add_option("--random-output-len", a->random_output_len, "Output tokens (random, shared-prefix)")
      ->capture_default_str();
  sub->add_option("--shared-prefix-len", a->shared_prefix_len, "Common prefix tokens (shared-prefix)")
      ->capture_default_str();
  sub->add_option("--seed", a->seed, "Seed of sampling, synthetic prompts and arrivals")->capture_default_str();
  sub->add_option("--sampling-seed", a->ep.seed, "Sent as \"seed\" with every request (default: not sent)");
  sub->add_option("--temperature", a->ep.temperature, "Sampling temperature sent")->capture_default_str();
  sub->add_flag("--no-ignore-eos", a->no_ignore_eos,
                "Do not send ignore_eos (outputs may then end before max_tokens)");
  sub->add_option("--warmup", a->warmup, "Warm-up requests sent first (all at once), not counted")
      ->capture_default_str();
  sub->add_option("--goodput", a->goodput, "SLOs in ms, e.g. --goodput ttft:500 tpot:50 e2el:2000");
  sub->add_option("--result-json", a->result_json, "Write config + metrics as JSON (atomically)");
  sub->add_flag("--save-requests", a->save_requests, "Include per-request records in --result-json");
  sub->add_option("--plot", a->plot, "Write an SVG chart of TTFT/TPOT/E2E latency p50/p90/p99");
  sub->add_option("--token-counter", a->token_counter,
                  "How prompt/reference lengths are counted: server (POST /tokenize) or local (-m); default local "
                  "when -m is given, else server");
  sub->add_option("-m,--tokenizer-model", a->tokenizer_model, "Model file whose tokenizer counts tokens locally");
  sub->add_option("--request-timeout", a->ep.timeout_s, "Seconds per request read/write")->capture_default_str();
  sub->add_flag("--disable-progress", a->no_progress, "No progress bar on stderr");
  sub->callback([a, sub, &bench, &status] {
    reject_unused_options(bench, *sub, *a);
    status = bench_serve(*a);
  });
  return sub;
}

}  // namespace contrail::cli
