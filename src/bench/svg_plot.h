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

// Throughput against concurrency (the batch sweep): x = the concurrency levels, evenly spaced and
// labelled; one line per series with its points and values printed; y from 0 with 1/2/5 ticks.
struct LineSeries {
  std::string name;           // e.g. "aggregate tokens/s"
  std::vector<double> y;      // one value per x level
};
std::string lines_svg(const std::string& title, const std::string& x_label, const std::string& y_label,
                      const std::vector<double>& x, const std::vector<LineSeries>& series);

// Writes `content` to `path` atomically (a temporary file in the same directory, then rename).
// Throws Error naming the path on failure.
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace contrail::bench
