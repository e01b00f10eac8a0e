// Serving-benchmark metrics over per-request timelines. Method (no code) from JetStream's
// benchmarks/benchmark_serving.py (calculate_metrics: throughputs over the benchmark duration,
// TTFT, TPOT = latency / output tokens) and vLLM's benchmarks/benchmark_serving.py
// (TPOT = (latency - TTFT) / (output tokens - 1), ITL over all requests, E2EL, goodput under SLOs,
// mean/median/std/percentiles).
//
// Contracts:
//  - Times are seconds on one monotonic clock; send_s is the request's send time, ttft_s and
//    latency_s are measured from it, itl_s holds the gaps between consecutive content chunks.
//  - Only successful requests enter the latency statistics and token totals (as both tools do).
//  - input tokens = the dataset's prompt_len (as JetStream/vLLM); output tokens = the server's
//    usage.completion_tokens when reported, else the number of content chunks.
//  - duration = first send to last completion over all requests (failed ones included); every
//    throughput = count / duration.
//  - Percentiles interpolate linearly between order statistics (numpy.percentile's default);
//    std is the population standard deviation (numpy.std). Empty samples give all zeros.
//  - JetStream TPOT counts requests with >= 1 output token; vLLM TPOT those with >= 2 (for
//    goodput a request with < 2 tokens has vLLM TPOT 0, as in vLLM).
//  - Goodput: completed requests meeting every given SLO (ttft, tpot = vLLM's, e2el; in ms,
//    inclusive), per second of duration.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace contrail::bench {

struct RequestRecord {
  int64_t prompt_len = 0;         // dataset count
  int64_t expected_output = 0;    // max_tokens sent
  bool success = false;
  std::string error;
  double send_s = 0;              // absolute (benchmark clock)
  double ttft_s = 0;              // relative to send_s
  double latency_s = 0;           // end-to-end, relative to send_s
  std::vector<double> itl_s;      // gaps between content chunks
  int64_t output_tokens = 0;      // usage.completion_tokens, else content chunks
  int64_t chunks = 0;             // content chunks received
  int64_t usage_prompt_tokens = -1;  // server's usage.prompt_tokens, -1 when absent
};

struct Summary {
  double mean = 0, median = 0, std = 0, p90 = 0, p99 = 0, min = 0, max = 0;
  int64_t n = 0;
};

// numpy.percentile(v, p) with linear interpolation; p in [0, 100]. 0 for an empty v.
double percentile(std::vector<double> v, double p);
Summary summarize(const std::vector<double>& v);  // seconds in, same unit out

// Per-request derived values (seconds).
double jetstream_tpot(const RequestRecord& r);  // latency / output tokens; 0 when none
double vllm_tpot(const RequestRecord& r);       // (latency - ttft) / (output - 1); 0 when < 2 tokens

struct Slo {  // milliseconds; <= 0 = not set
  double ttft_ms = 0, tpot_ms = 0, e2el_ms = 0;
  bool any() const { return ttft_ms > 0 || tpot_ms > 0 || e2el_ms > 0; }
};
// Parses "ttft:500 tpot:50 e2el:2000" items (one per element); throws InvalidArgument naming the
// bad item.
Slo parse_goodput(const std::vector<std::string>& items);
bool meets_slo(const RequestRecord& r, const Slo& s);

struct BenchMetrics {
  int64_t completed = 0, failed = 0;
  int64_t total_input = 0, total_output = 0;
  double duration_s = 0;
  double request_throughput = 0, input_throughput = 0, output_throughput = 0, total_throughput = 0;
  int64_t good_completed = 0;
  double goodput = 0;          // req/s; only meaningful when an SLO was given
  Summary ttft, tpot_jetstream, tpot_vllm, itl, e2el;  // seconds
};

// duration_s = max(send + latency) - min(send) over all records (0 when none).
double benchmark_duration(const std::vector<RequestRecord>& records);
BenchMetrics compute_metrics(const std::vector<RequestRecord>& records, double duration_s, const Slo& slo = {});

}  // namespace contrail::bench
