// Latency-percentile chart of a serving-benchmark run as a standalone SVG (opens in a browser).
// Contract: one panel per metric, each with its own millisecond y axis (ticks at 1/2/5 x 10^k
// steps, gridlines, unit label) and three bars p50 / p90 / p99 with their values printed; a title
// and a legend. Text is XML-escaped; the output is well-formed XML with an <svg> root.
#pragma once
#include <string>
#include <vector>

namespace contrail::bench {

struct PlotSeries {
  std::string name;  // e.g. "TTFT"
  double p50_ms = 0, p90_ms = 0, p99_ms = 0;
};

std::string latency_svg(const std::string& title, const std::vector<PlotSeries>& series);

// Writes `content` to `path` atomically (a temporary file in the same directory, then rename).
// Throws Error naming the path on failure.
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace contrail::bench
