// Human table and result JSON of a serving-benchmark run.
// Contract: the JSON has "config" (caller-supplied object, dumped as given), "metrics" with
// completed, failed, num_prompts, duration_s, total_input_tokens, total_output_tokens,
// request/input/output/total throughput, goodput (when SLOs set), and for ttft, tpot (vLLM
// definition), tpot_jetstream, itl, e2el: {mean,median,std,p90,p99,min,max}_ms and n; plus
// "requests" (per-request records, ms) when include_requests.
#pragma once
#include <string>
#include <vector>

#include "bench/metrics.h"

namespace contrail::bench {

std::string result_table(const BenchMetrics& m, const Slo& slo, int64_t num_prompts);
// config_json: a JSON object text (e.g. built by the CLI).
std::string result_json(const std::string& config_json, const BenchMetrics& m, const Slo& slo, int64_t num_prompts,
                        const std::vector<RequestRecord>& records, bool include_requests);

}  // namespace contrail::bench
