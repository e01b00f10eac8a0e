// Server metrics in the Prometheus text exposition format (version 0.0.4): engine gauges read at
// scrape time, request counters and latency histograms (TTFT, TPOT, end-to-end) observed by the
// HTTP layer. Thread-safe.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "contrail/engine/engine.h"

namespace contrail::server {

// A cumulative histogram with fixed upper bounds (seconds).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // Appends "# HELP/# TYPE", the _bucket lines (le="..." and +Inf), _sum and _count.
  void render(std::string& out, const std::string& name, const std::string& help) const;

 private:
  mutable std::mutex mu_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // (bounds + 1) non-cumulative
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  Histogram ttft, tpot, e2e;
  // Finished requests by finish reason ("stop", "length", "abort", "error", "disconnect").
  void count_finished(const std::string& reason);
  std::atomic<int64_t> rejected_429{0};      // admission control
  std::atomic<int64_t> bad_requests{0};      // 4xx answers other than 429
  std::atomic<int64_t> server_errors{0};     // 5xx answers from failed handlers
  std::string render(const engine::EngineStats& st, const std::string& model) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, int64_t> finished_;
};

}  // namespace contrail::server
