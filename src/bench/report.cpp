// Formatting of serving-benchmark results (table on stdout, JSON file).
#include "bench/report.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace contrail::bench {
namespace {

using json = nlohmann::json;

json summary_json(const Summary& s) {
  return {{"n", s.n},           {"mean_ms", s.mean * 1e3}, {"median_ms", s.median * 1e3}, {"std_ms", s.std * 1e3},
          {"p50_ms", s.median * 1e3}, {"p90_ms", s.p90 * 1e3},   {"p99_ms", s.p99 * 1e3},       {"min_ms", s.min * 1e3},
          {"max_ms", s.max * 1e3}};
}

void section(std::string& o, const char* title, const char* key, const Summary& s) {
  o += fmt::format("{:-^56}\n", std::string(" ") + title + " ");
  o += fmt::format("{:<40}{:>16.2f}\n", fmt::format("Mean {} (ms):", key), s.mean * 1e3);
  o += fmt::format("{:<40}{:>16.2f}\n", fmt::format("Median {} (ms):", key), s.median * 1e3);
  o += fmt::format("{:<40}{:>16.2f}\n", fmt::format("Std {} (ms):", key), s.std * 1e3);
  o += fmt::format("{:<40}{:>16.2f}\n", fmt::format("P90 {} (ms):", key), s.p90 * 1e3);
  o += fmt::format("{:<40}{:>16.2f}\n", fmt::format("P99 {} (ms):", key), s.p99 * 1e3);
}

}  // namespace

std::string result_table(const BenchMetrics& m, const Slo& slo, int64_t num_prompts) {
  std::string o = fmt::format("{:=^56}\n", " Serving Benchmark Result ");
  auto row = [&](const std::string& k, const std::string& v) { o += fmt::format("{:<40}{:>16}\n", k, v); };
  row("Requests (completed / failed / total):", fmt::format("{} / {} / {}", m.completed, m.failed, num_prompts));
  row("Benchmark duration (s):", fmt::format("{:.2f}", m.duration_s));
  row("Total input tokens:", fmt::format("{}", m.total_input));
  row("Total generated tokens:", fmt::format("{}", m.total_output));
  row("Request throughput (req/s):", fmt::format("{:.2f}", m.request_throughput));
  if (slo.any()) row("Request goodput (req/s):", fmt::format("{:.2f}", m.goodput));
  row("Input token throughput (tok/s):", fmt::format("{:.2f}", m.input_throughput));
  row("Output token throughput (tok/s):", fmt::format("{:.2f}", m.output_throughput));
  row("Total token throughput (tok/s):", fmt::format("{:.2f}", m.total_throughput));
  section(o, "Time to First Token", "TTFT", m.ttft);
  section(o, "Time per Output Token (excl. 1st token, vLLM)", "TPOT", m.tpot_vllm);
  section(o, "Time per Output Token (latency/tokens, JetStream)", "TPOT", m.tpot_jetstream);
  section(o, "Inter-token Latency", "ITL", m.itl);
  section(o, "End-to-end Latency", "E2EL", m.e2el);
  o += fmt::format("{:=^56}\n", "");
  return o;
}

std::string result_json(const std::string& config_json, const BenchMetrics& m, const Slo& slo, int64_t num_prompts,
                        const std::vector<RequestRecord>& records, bool include_requests) {
  json j;
  j["config"] = json::parse(config_json);
  json mt = {{"num_prompts", num_prompts},
             {"completed", m.completed},
             {"failed", m.failed},
             {"duration_s", m.duration_s},
             {"total_input_tokens", m.total_input},
             {"total_output_tokens", m.total_output},
             {"total_tokens", m.total_input + m.total_output},
             {"request_throughput", m.request_throughput},
             {"input_throughput", m.input_throughput},
             {"output_throughput", m.output_throughput},
             {"total_token_throughput", m.total_throughput},
             {"ttft", summary_json(m.ttft)},
             {"tpot", summary_json(m.tpot_vllm)},
             {"tpot_vllm", summary_json(m.tpot_vllm)},
             {"tpot_jetstream", summary_json(m.tpot_jetstream)},
             {"itl", summary_json(m.itl)},
             {"e2el", summary_json(m.e2el)}};
  if (slo.any()) {
    json s = json::object();
    if (slo.ttft_ms > 0) s["ttft_ms"] = slo.ttft_ms;
    if (slo.tpot_ms > 0) s["tpot_ms"] = slo.tpot_ms;
    if (slo.e2el_ms > 0) s["e2el_ms"] = slo.e2el_ms;
    mt["goodput_slo"] = s;
    mt["good_completed"] = m.good_completed;
    mt["request_goodput"] = m.goodput;
  }
  j["metrics"] = mt;
  std::vector<std::string> errors;
  for (const auto& r : records)
    if (!r.success && errors.size() < 10) errors.push_back(r.error);
  j["errors"] = errors;
  if (include_requests) {
    json rs = json::array();
    for (const auto& r : records) {
      json itl = json::array();
      for (double g : r.itl_s) itl.push_back(g * 1e3);
      rs.push_back({{"success", r.success},
                    {"error", r.error},
                    {"prompt_len", r.prompt_len},
                    {"max_tokens", r.expected_output},
                    {"output_tokens", r.output_tokens},
                    {"chunks", r.chunks},
                    {"usage_prompt_tokens", r.usage_prompt_tokens},
                    {"send_ms", r.send_s * 1e3},
                    {"ttft_ms", r.ttft_s * 1e3},
                    {"latency_ms", r.latency_s * 1e3},
                    {"tpot_vllm_ms", vllm_tpot(r) * 1e3},
                    {"tpot_jetstream_ms", jetstream_tpot(r) * 1e3},
                    {"itl_ms", itl}});
    }
    j["requests"] = rs;
  }
  return j.dump(2) + "\n";
}

}  // namespace contrail::bench
