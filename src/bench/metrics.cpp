// Metric formulas of the serving benchmark (see metrics.h for the definitions followed).
#include "bench/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "contrail/core/error.h"

namespace contrail::bench {

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  if (!(p >= 0 && p <= 100)) throw InvalidArgument(fmt::format("percentile {} must be in [0, 100]", p));
  std::sort(v.begin(), v.end());
  const double pos = p / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return v[lo] + (v[hi] - v[lo]) * frac;
}

Summary summarize(const std::vector<double>& v) {
  Summary s;
  s.n = static_cast<int64_t>(v.size());
  if (v.empty()) return s;
  const double n = static_cast<double>(v.size());
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / n;
  double ss = 0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(ss / n);
  s.median = percentile(v, 50);
  s.p90 = percentile(v, 90);
  s.p99 = percentile(v, 99);
  s.min = *std::min_element(v.begin(), v.end());
  s.max = *std::max_element(v.begin(), v.end());
  return s;
}

double jetstream_tpot(const RequestRecord& r) {
  return r.output_tokens > 0 ? r.latency_s / static_cast<double>(r.output_tokens) : 0;
}

double vllm_tpot(const RequestRecord& r) {
  return r.output_tokens > 1 ? (r.latency_s - r.ttft_s) / static_cast<double>(r.output_tokens - 1) : 0;
}

Slo parse_goodput(const std::vector<std::string>& items) {
  Slo s;
  for (const std::string& it : items) {
    const size_t colon = it.find(':');
    const std::string key = colon == std::string::npos ? it : it.substr(0, colon);
    double v = 0;
    bool ok = colon != std::string::npos && colon + 1 < it.size();
    if (ok) {
      try {
        size_t used = 0;
        v = std::stod(it.substr(colon + 1), &used);
        ok = used == it.size() - colon - 1 && v > 0 && std::isfinite(v);
      } catch (const std::exception&) {
        ok = false;
      }
    }
    if (!ok)
      throw InvalidArgument(fmt::format("--goodput item '{}' must be NAME:MILLISECONDS with a value > 0 "
                                        "(NAME one of ttft, tpot, e2el), e.g. ttft:500",
                                        it));
    if (key == "ttft") s.ttft_ms = v;
    else if (key == "tpot") s.tpot_ms = v;
    else if (key == "e2el") s.e2el_ms = v;
    else
      throw InvalidArgument(fmt::format("--goodput item '{}': unknown metric '{}'; known: ttft, tpot, e2el", it, key));
  }
  return s;
}

bool meets_slo(const RequestRecord& r, const Slo& s) {
  if (!r.success) return false;
  if (s.ttft_ms > 0 && r.ttft_s * 1e3 > s.ttft_ms) return false;
  if (s.tpot_ms > 0 && vllm_tpot(r) * 1e3 > s.tpot_ms) return false;
  if (s.e2el_ms > 0 && r.latency_s * 1e3 > s.e2el_ms) return false;
  return true;
}

double benchmark_duration(const std::vector<RequestRecord>& records) {
  if (records.empty()) return 0;
  double first = records.front().send_s, last = records.front().send_s + records.front().latency_s;
  for (const auto& r : records) {
    first = std::min(first, r.send_s);
    last = std::max(last, r.send_s + r.latency_s);
  }
  return last - first;
}

BenchMetrics compute_metrics(const std::vector<RequestRecord>& records, double duration_s, const Slo& slo) {
  BenchMetrics m;
  m.duration_s = duration_s;
  std::vector<double> ttft, tpot_js, tpot_v, itl, e2el;
  for (const auto& r : records) {
    if (!r.success) {
      ++m.failed;
      continue;
    }
    ++m.completed;
    m.total_input += r.prompt_len;
    m.total_output += r.output_tokens;
    ttft.push_back(r.ttft_s);
    e2el.push_back(r.latency_s);
    if (r.output_tokens > 0) tpot_js.push_back(jetstream_tpot(r));
    if (r.output_tokens > 1) tpot_v.push_back(vllm_tpot(r));
    itl.insert(itl.end(), r.itl_s.begin(), r.itl_s.end());
    if (slo.any() && meets_slo(r, slo)) ++m.good_completed;
  }
  if (duration_s > 0) {
    m.request_throughput = static_cast<double>(m.completed) / duration_s;
    m.input_throughput = static_cast<double>(m.total_input) / duration_s;
    m.output_throughput = static_cast<double>(m.total_output) / duration_s;
    m.total_throughput = static_cast<double>(m.total_input + m.total_output) / duration_s;
    m.goodput = static_cast<double>(m.good_completed) / duration_s;
  }
  m.ttft = summarize(ttft);
  m.tpot_jetstream = summarize(tpot_js);
  m.tpot_vllm = summarize(tpot_v);
  m.itl = summarize(itl);
  m.e2el = summarize(e2el);
  return m;
}

}  // namespace contrail::bench
