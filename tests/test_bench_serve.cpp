// `contrail bench serve` (src/bench): metric formulas on hand-computed timelines, ShareGPT parsing
// and JetStream's filters, and the real CLI against `contrail serve` on stories260K.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bench/dataset.h"
#include "bench/metrics.h"
#include "bench/svg_plot.h"
#include "contrail/core/error.h"
#include "contrail/model/model_file.h"
#include "contrail/tokenizer/tokenizer.h"
#include "server_process.h"
#include "test_util.h"

namespace contrail {
namespace {

using json = nlohmann::json;
using bench::RequestRecord;

std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

// ---- metrics -----------------------------------------------------------------------------------

TEST(BenchMetrics, PercentileMatchesNumpyLinear) {
  // numpy.percentile([4, 1, 3, 2], q): rank q/100 * (n - 1), interpolated.
  const std::vector<double> v = {4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(bench::percentile(v, 50), 2.5);
  EXPECT_DOUBLE_EQ(bench::percentile(v, 90), 3.7);
  EXPECT_DOUBLE_EQ(bench::percentile(v, 99), 3.97);
  EXPECT_DOUBLE_EQ(bench::percentile(v, 0), 1);
  EXPECT_DOUBLE_EQ(bench::percentile(v, 100), 4);
  EXPECT_DOUBLE_EQ(bench::percentile({7}, 99), 7);
  EXPECT_DOUBLE_EQ(bench::percentile({}, 50), 0);
  const bench::Summary s = bench::summarize({1, 2, 3, 4});
  EXPECT_DOUBLE_EQ(s.mean, 2.5);
  EXPECT_DOUBLE_EQ(s.std, std::sqrt(1.25));  // population std, as numpy.std
  EXPECT_DOUBLE_EQ(s.median, 2.5);
}

// Four requests on one clock (seconds):
//  r1: sent 0.0, first token 0.1, done 1.0, 10 tokens, 9 gaps of 0.1
//  r2: sent 0.5, first token +0.2, done +2.0, 5 tokens, 4 gaps of 0.45
//  r3: sent 1.0, failed after 3.0 (ends at 4.0: the last completion)
//  r4: sent 0.2, 1 token at +0.3 = done
std::vector<RequestRecord> timeline() {
  RequestRecord r1, r2, r3, r4;
  r1 = {10, 10, true, "", 0.0, 0.1, 1.0, std::vector<double>(9, 0.1), 10, 10, 10};
  r2 = {20, 5, true, "", 0.5, 0.2, 2.0, std::vector<double>(4, 0.45), 5, 5, 20};
  r3 = {99, 5, false, "HTTP 500", 1.0, 0, 3.0, {}, 0, 0, -1};
  r4 = {30, 1, true, "", 0.2, 0.3, 0.3, {}, 1, 1, 30};
  return {r1, r2, r3, r4};
}

TEST(BenchMetrics, BothTpotDefinitions) {
  const auto t = timeline();
  EXPECT_DOUBLE_EQ(bench::jetstream_tpot(t[0]), 0.1);          // 1.0 / 10
  EXPECT_DOUBLE_EQ(bench::vllm_tpot(t[0]), 0.1);               // (1.0 - 0.1) / 9
  EXPECT_DOUBLE_EQ(bench::jetstream_tpot(t[1]), 0.4);          // 2.0 / 5
  EXPECT_DOUBLE_EQ(bench::vllm_tpot(t[1]), 0.45);              // 1.8 / 4
  EXPECT_DOUBLE_EQ(bench::jetstream_tpot(t[3]), 0.3);          // 0.3 / 1
  EXPECT_DOUBLE_EQ(bench::vllm_tpot(t[3]), 0.0);               // one token: no TPOT
}

TEST(BenchMetrics, AggregatesAndThroughput) {
  const auto t = timeline();
  const double dur = bench::benchmark_duration(t);
  EXPECT_DOUBLE_EQ(dur, 4.0);  // first send 0.0 -> last completion 1.0 + 3.0
  const bench::BenchMetrics m = bench::compute_metrics(t, dur);
  EXPECT_EQ(m.completed, 3);
  EXPECT_EQ(m.failed, 1);
  EXPECT_EQ(m.total_input, 60);   // failed request's prompt not counted
  EXPECT_EQ(m.total_output, 16);
  EXPECT_DOUBLE_EQ(m.request_throughput, 0.75);
  EXPECT_DOUBLE_EQ(m.input_throughput, 15.0);
  EXPECT_DOUBLE_EQ(m.output_throughput, 4.0);
  EXPECT_DOUBLE_EQ(m.total_throughput, 19.0);
  // TTFT {0.1, 0.2, 0.3}
  EXPECT_NEAR(m.ttft.mean, 0.2, 1e-12);
  EXPECT_NEAR(m.ttft.median, 0.2, 1e-12);
  EXPECT_NEAR(m.ttft.p90, 0.28, 1e-12);
  EXPECT_NEAR(m.ttft.p99, 0.298, 1e-12);
  // E2EL {1.0, 2.0, 0.3}: sorted 0.3 1.0 2.0
  EXPECT_NEAR(m.e2el.median, 1.0, 1e-12);
  EXPECT_NEAR(m.e2el.p90, 1.8, 1e-12);
  // vLLM TPOT over requests with >= 2 tokens {0.1, 0.45}; JetStream's over all {0.1, 0.4, 0.3}
  EXPECT_EQ(m.tpot_vllm.n, 2);
  EXPECT_NEAR(m.tpot_vllm.mean, 0.275, 1e-12);
  EXPECT_NEAR(m.tpot_vllm.p99, 0.1 + 0.35 * 0.99, 1e-12);
  EXPECT_EQ(m.tpot_jetstream.n, 3);
  EXPECT_NEAR(m.tpot_jetstream.mean, 0.8 / 3, 1e-12);
  EXPECT_NEAR(m.tpot_jetstream.median, 0.3, 1e-12);
  // ITL: all 13 gaps pooled.
  EXPECT_EQ(m.itl.n, 13);
  EXPECT_NEAR(m.itl.mean, 2.7 / 13, 1e-12);
  EXPECT_NEAR(m.itl.median, 0.1, 1e-12);
  EXPECT_NEAR(m.itl.p90, 0.45, 1e-12);
}

TEST(BenchMetrics, Goodput) {
  const auto t = timeline();
  auto good = [&](std::vector<std::string> items) {
    return bench::compute_metrics(t, 4.0, bench::parse_goodput(items)).good_completed;
  };
  EXPECT_EQ(good({"ttft:150"}), 1);   // r1 only
  EXPECT_EQ(good({"tpot:200"}), 2);   // r1 (100 ms), r4 (1 token -> 0)
  EXPECT_EQ(good({"e2el:1500"}), 2);  // r1, r4
  EXPECT_EQ(good({"ttft:300", "tpot:450", "e2el:2000"}), 3);  // limits are inclusive
  EXPECT_EQ(good({"ttft:150", "tpot:200", "e2el:1500"}), 1);
  const auto m = bench::compute_metrics(t, 4.0, bench::parse_goodput({"tpot:200"}));
  EXPECT_DOUBLE_EQ(m.goodput, 0.5);
  test::expect_invalid([] { bench::parse_goodput({"ttft=5"}); }, {"ttft=5", "NAME:MILLISECONDS"});
  test::expect_invalid([] { bench::parse_goodput({"foo:5"}); }, {"foo", "ttft, tpot, e2el"});
  test::expect_invalid([] { bench::parse_goodput({"tpot:-1"}); }, {"tpot:-1"});
}

// ---- datasets ----------------------------------------------------------------------------------

// Counts words; add_special adds one (BOS).
int64_t word_count(const std::string& s, bool add_special) {
  std::istringstream in(s);
  std::string w;
  int64_t n = 0;
  while (in >> w) ++n;
  return n + (add_special ? 1 : 0);
}

TEST(BenchDataset, ShareGptFirstTwoTurnsAndJetStreamFilters) {
  test::TempDir dir("bench_sharegpt");
  const std::string path = dir.write("sg.json", bytes(R"([
    {"id": "ok", "conversations": [{"from": "human", "value": "one two three four"},
                                   {"from": "gpt", "value": "a b c d e f"},
                                   {"from": "human", "value": "ignored third turn"}]},
    {"id": "single", "conversations": [{"from": "human", "value": "only one turn here"}]},
    {"id": "gpt-first", "conversations": [{"from": "gpt", "value": "x y z w v"}, {"from": "human", "value": "a b c d"}]},
    {"id": "short-out", "conversations": [{"from": "human", "value": "p q r s t"}, {"from": "gpt", "value": "a b c"}]},
    {"id": "long-in", "conversations": [{"from": "human", "value": "1 2 3 4 5 6 7 8 9 10 11"},
                                        {"from": "gpt", "value": "a b c d"}]},
    {"id": "long-total", "conversations": [{"from": "human", "value": "1 2 3 4 5 6 7 8"},
                                           {"from": "gpt", "value": "1 2 3 4 5 6 7 8 9 10 11 12 13"}]},
    {"id": "ok2", "conversations": [{"from": "human", "value": "five six seven eight nine"},
                                    {"from": "gpt", "value": "1 2 3 4 5 6 7 8 9 10"}]}
  ])"));
  const auto pairs = bench::load_sharegpt(path);
  ASSERT_EQ(pairs.size(), 5u);  // "single" and "gpt-first" dropped
  EXPECT_EQ(pairs[0].first, "one two three four");
  EXPECT_EQ(pairs[0].second, "a b c d e f");

  bench::FilterOptions f;
  f.max_input_length = 10;
  f.max_target_length = 20;
  f.max_output_length = 8;
  bench::FilterStats st;
  // Asking for more than pass counts every pair, then repeats the two that pass.
  const auto reqs = bench::sample_sharegpt(pairs, 5, 7, f, word_count, &st);
  ASSERT_EQ(reqs.size(), 5u);
  EXPECT_EQ(st.counted, 5);
  EXPECT_EQ(st.too_short, 1);        // reply of 3 < 4
  EXPECT_EQ(st.too_long_input, 1);   // 12 > 10
  EXPECT_EQ(st.too_long_total, 1);   // 9 + 13 > 20
  EXPECT_TRUE(st.repeated);
  for (const auto& r : reqs) {
    if (r.prompt == "one two three four") {
      EXPECT_EQ(r.prompt_len, 5);
      EXPECT_EQ(r.ref_output_len, 6);
      EXPECT_EQ(r.output_len, 6);
    } else {
      EXPECT_EQ(r.prompt, "five six seven eight nine");
      EXPECT_EQ(r.ref_output_len, 10);
      EXPECT_EQ(r.output_len, 8);  // capped by max_output_length
    }
  }
  EXPECT_NE(reqs[0].prompt, reqs[1].prompt);
  EXPECT_EQ(reqs[2].prompt, reqs[0].prompt);
  // Same seed, same sample.
  const auto again = bench::sample_sharegpt(pairs, 2, 7, f, word_count, &st);
  EXPECT_EQ(again[0].prompt, reqs[0].prompt);
  EXPECT_EQ(again[1].prompt, reqs[1].prompt);
  EXPECT_FALSE(st.repeated);
  // The server's context also bounds prompt + sent output.
  f.max_model_len = 12;
  const auto ctx = bench::sample_sharegpt(pairs, 1, 7, f, word_count, &st);
  EXPECT_EQ(ctx[0].prompt, "one two three four");
  f.max_input_length = 3;
  test::expect_invalid([&] { bench::sample_sharegpt(pairs, 1, 7, f, word_count); }, {"--max-input-length 3"});
  EXPECT_THROW(bench::load_sharegpt(dir.file("missing.json")), Error);
  const std::string bad = dir.write("bad.json", bytes("{\"not\": \"a list\"}"));
  EXPECT_THROW(bench::load_sharegpt(bad), Error);
}

TEST(BenchDataset, ShareGptDemoWithStoriesTokenizer) {
  const std::string path = test::data_path("data/sharegpt_demo.json");
  const std::string model = test::data_path("models/stories260K/stories260K.gguf");
  CONTRAIL_REQUIRE_DATA(path);  // a failure under CI, a skip elsewhere
  CONTRAIL_REQUIRE_DATA(model);
  const auto pairs = bench::load_sharegpt(path);
  ASSERT_GT(pairs.size(), 100u);
  const Tokenizer tok(load_model_file(model).vocab);
  auto count = [&](const std::string& s, bool sp) { return static_cast<int64_t>(tok.encode(s, sp).size()); };
  bench::FilterOptions f;  // JetStream's defaults
  f.max_output_length = 1024;
  const auto reqs = bench::sample_sharegpt(pairs, 32, 0, f, count);
  ASSERT_EQ(reqs.size(), 32u);
  for (const auto& r : reqs) {
    EXPECT_GE(r.prompt_len, 4);
    EXPECT_GE(r.ref_output_len, 4);
    EXPECT_LE(r.prompt_len, 1024);
    EXPECT_LE(r.prompt_len + r.ref_output_len, 2048);
    EXPECT_EQ(r.prompt_len, count(r.prompt, true));
    EXPECT_EQ(r.output_len, std::min<int64_t>(r.ref_output_len, 1024));
  }
  // Synthetic sets: exact counted lengths close to the targets.
  const auto rnd = bench::random_requests(4, 50, 7, 1, count);
  for (const auto& r : rnd) {
    EXPECT_LE(r.prompt_len, 50);
    EXPECT_GE(r.prompt_len, 40);
    EXPECT_EQ(r.prompt_len, count(r.prompt, true));
    EXPECT_EQ(r.output_len, 7);
  }
  const auto sp = bench::shared_prefix_requests(3, 40, 10, 5, 1, count);
  const std::string prefix = sp[0].prompt.substr(0, sp[0].prompt.find(" 0:"));
  for (const auto& r : sp) {
    EXPECT_EQ(r.prompt.rfind(prefix, 0), 0u);
    EXPECT_LE(r.prompt_len, count(prefix, true) + 10);
  }
  EXPECT_NE(sp[1].prompt, sp[2].prompt);
}

TEST(BenchPlot, SvgIsWellFormed) {
  const std::string s = bench::latency_svg("a <b> & c", {{"TTFT", 1, 2, 3}, {"TPOT", 0, 0, 0}});
  EXPECT_NE(s.find("<svg"), std::string::npos);
  EXPECT_NE(s.find("a &lt;b&gt; &amp; c"), std::string::npos);
  EXPECT_NE(s.find("TTFT (ms)"), std::string::npos);
  EXPECT_NE(s.find("</svg>"), std::string::npos);
}

// ---- end to end --------------------------------------------------------------------------------

TEST(BenchServe, CliAgainstContrailServe) {
  const std::string model = test::data_path("models/stories260K/stories260K.gguf");
  const std::string data = test::data_path("data/sharegpt_demo.json");
  CONTRAIL_REQUIRE_DATA(model);  // a failure under CI, a skip elsewhere
  CONTRAIL_REQUIRE_DATA(data);
  test::ServerProcess server({"-m", model});
  test::TempDir dir("bench_serve");
  const std::string out_json = dir.file("r.json"), svg = dir.file("r.svg");
  const std::string cmd = test::cli_path() + " bench serve --base-url http://127.0.0.1:" +
                          std::to_string(server.port()) + " --dataset sharegpt --dataset-path " + data +
                          " --num-prompts 8 --max-output-length 32 --request-rate inf --save-requests"
                          " --goodput ttft:60000 --result-json " + out_json + " --plot " + svg + " 2>&1";
  std::string out;
  ASSERT_EQ(test::run_command(cmd, &out), 0) << out << "\nserver log:\n" << server.log();
  EXPECT_NE(out.find("Serving Benchmark Result"), std::string::npos) << out;

  const json j = json::parse(test::read_text(out_json));
  const json& m = j["metrics"];
  const int64_t completed = m["completed"], failed = m["failed"];
  EXPECT_EQ(completed + failed, 8);
  EXPECT_EQ(completed, 8) << j["errors"].dump();
  EXPECT_EQ(m["total_tokens"].get<int64_t>(),
            m["total_input_tokens"].get<int64_t>() + m["total_output_tokens"].get<int64_t>());
  const double dur = m["duration_s"];
  ASSERT_GT(dur, 0);
  EXPECT_NEAR(m["output_throughput"].get<double>(), m["total_output_tokens"].get<double>() / dur, 1e-9);
  EXPECT_NEAR(m["request_throughput"].get<double>(), completed / dur, 1e-9);
  EXPECT_EQ(m["good_completed"].get<int64_t>(), completed);
  for (const char* k : {"ttft", "tpot_vllm", "tpot_jetstream", "itl", "e2el"}) {
    const json& s = m[k];
    EXPECT_GT(s["mean_ms"].get<double>(), 0) << k;
    EXPECT_GT(s["min_ms"].get<double>(), 0) << k;
    EXPECT_LE(s["p50_ms"].get<double>(), s["p90_ms"].get<double>()) << k;
    EXPECT_LE(s["p90_ms"].get<double>(), s["p99_ms"].get<double>()) << k;
    EXPECT_LE(s["p99_ms"].get<double>(), s["max_ms"].get<double>() + 1e-9) << k;
  }
  // Both TPOT definitions agree with the per-request records.
  const json& rs = j["requests"];
  ASSERT_EQ(rs.size(), 8u);
  double sum_js = 0, sum_v = 0;
  int64_t n_v = 0, out_tokens = 0;
  for (const json& r : rs) {
    ASSERT_TRUE(r["success"].get<bool>()) << r.dump();
    const double lat = r["latency_ms"], ttft = r["ttft_ms"];
    const int64_t n = r["output_tokens"];
    EXPECT_GT(ttft, 0);
    EXPECT_GE(lat, ttft);
    EXPECT_EQ(n, r["max_tokens"].get<int64_t>());  // ignore_eos honours the dataset length
    EXPECT_LE(n, 32);
    out_tokens += n;
    EXPECT_NEAR(r["tpot_jetstream_ms"].get<double>(), lat / n, 1e-6);
    sum_js += lat / n;
    if (n > 1) {
      EXPECT_NEAR(r["tpot_vllm_ms"].get<double>(), (lat - ttft) / (n - 1), 1e-6);
      sum_v += (lat - ttft) / (n - 1);
      ++n_v;
    }
  }
  EXPECT_EQ(out_tokens, m["total_output_tokens"].get<int64_t>());
  EXPECT_NEAR(m["tpot_jetstream"]["mean_ms"].get<double>(), sum_js / 8, 1e-6);
  EXPECT_NEAR(m["tpot_vllm"]["mean_ms"].get<double>(), sum_v / n_v, 1e-6);
  EXPECT_EQ(j["config"]["request_rate"], "inf");

  const std::string plot = test::read_text(svg);
  EXPECT_NE(plot.find("<svg"), std::string::npos);
  std::string xml_out;
  if (test::run_command("command -v xmllint >/dev/null", nullptr) == 0)
    EXPECT_EQ(test::run_command("xmllint --noout " + svg + " 2>&1", &xml_out), 0) << xml_out;

  // An unreachable server is a clear error with exit status 1.
  std::string err;
  EXPECT_EQ(test::run_command(test::cli_path() + " bench serve --base-url http://127.0.0.1:1 --dataset random 2>&1", &err), 1);
  EXPECT_NE(err.find("cannot reach the server"), std::string::npos) << err;
}

}  // namespace
}  // namespace contrail
