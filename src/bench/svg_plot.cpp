// SVG bar chart of latency percentiles, and the atomic file writer.
#include "bench/svg_plot.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include "contrail/core/error.h"

namespace contrail::bench {
namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

// Tick step so that [0, top] has about 5 ticks at 1/2/5 x 10^k.
double nice_step(double top) {
  if (!(top > 0)) return 1;
  const double raw = top / 5;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

std::string fmt_ms(double v) {
  if (v >= 100) return fmt::format("{:.0f}", v);
  if (v >= 10) return fmt::format("{:.1f}", v);
  return fmt::format("{:.2f}", v);
}

}  // namespace

std::string latency_svg(const std::string& title, const std::vector<PlotSeries>& series) {
  const int panel_w = 260, panel_h = 300, left = 70, top = 70, gap = 40;
  const int n = static_cast<int>(series.size());
  const int width = left + n * panel_w + (n > 0 ? (n - 1) * gap : 0) + 30;
  const int height = top + panel_h + 70;
  const char* colors[3] = {"#4e79a7", "#f28e2b", "#e15759"};
  const char* labels[3] = {"p50", "p90", "p99"};
  std::string s = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect x=\"0\" y=\"0\" width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"24\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">{3}</text>\n",
      width, height, width / 2, esc(title));
  // Legend.
  for (int k = 0; k < 3; ++k)
    s += fmt::format("<rect x=\"{}\" y=\"36\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{}\" y=\"46\">{}</text>\n",
                     width / 2 - 90 + k * 65, colors[k], width / 2 - 74 + k * 65, labels[k]);
  for (int i = 0; i < n; ++i) {
    const PlotSeries& p = series[static_cast<size_t>(i)];
    const int x0 = left + i * (panel_w + gap), y0 = top, y1 = top + panel_h;
    const double vals[3] = {p.p50_ms, p.p90_ms, p.p99_ms};
    double vmax = 0;
    for (double v : vals) vmax = std::max(vmax, std::isfinite(v) ? v : 0.0);
    const double step = nice_step(vmax > 0 ? vmax * 1.1 : 1);
    const double ytop = std::max(step, std::ceil(vmax * 1.1 / step) * step);
    auto ypos = [&](double v) { return y1 - (v / ytop) * panel_h; };
    s += fmt::format("<g>\n<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>\n",
                     x0 + panel_w / 2, y0 - 6, esc(p.name));
    for (double t = 0; t <= ytop + step * 1e-9; t += step) {
      const double y = ypos(t);
      s += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>"
                       "<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n",
                       x0, y, x0 + panel_w, y, x0 - 5, y + 4, fmt_ms(t));
    }
    s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"black\"/>"
                     "<line x1=\"{0}\" y1=\"{2}\" x2=\"{3}\" y2=\"{2}\" stroke=\"black\"/>\n",
                     x0, y0, y1, x0 + panel_w);
    s += fmt::format("<text transform=\"translate({},{}) rotate(-90)\" text-anchor=\"middle\">{} (ms)</text>\n",
                     x0 - 48, (y0 + y1) / 2, esc(p.name));
    const int bw = panel_w / 5;
    for (int k = 0; k < 3; ++k) {
      const double v = std::isfinite(vals[k]) ? std::max(0.0, vals[k]) : 0.0;
      const int bx = x0 + bw / 2 + k * (bw + bw / 2);
      const double by = ypos(v);
      s += fmt::format("<rect x=\"{}\" y=\"{:.1f}\" width=\"{}\" height=\"{:.1f}\" fill=\"{}\"><title>{} {} = {} ms</title></rect>\n"
                       "<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>"
                       "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                       bx, by, bw, y1 - by, colors[k], esc(p.name), labels[k], fmt_ms(v), bx + bw / 2, by - 4, fmt_ms(v),
                       bx + bw / 2, y1 + 16, labels[k]);
    }
    s += "</g>\n";
  }
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">latency percentiles, milliseconds "
                   "(TPOT = (latency - TTFT) / (output tokens - 1))</text>\n</svg>\n",
                   width / 2, height - 14);
  return s;
}

std::string lines_svg(const std::string& title, const std::string& x_label, const std::string& y_label,
                      const std::vector<double>& x, const std::vector<LineSeries>& series) {
  const int left = 90, top = 76, plot_w = 640, plot_h = 320;
  const int width = left + plot_w + 40, height = top + plot_h + 80;
  const char* colors[] = {"#4e79a7", "#f28e2b", "#e15759", "#59a14f"};
  double vmax = 0;
  for (const LineSeries& l : series)
    for (double v : l.y) vmax = std::max(vmax, std::isfinite(v) ? v : 0.0);
  const double step = nice_step(vmax > 0 ? vmax * 1.1 : 1);
  const double ytop = std::max(step, std::ceil(vmax * 1.1 / step) * step);
  const int y1 = top + plot_h;
  auto ypos = [&](double v) { return y1 - (v / ytop) * plot_h; };
  const size_t n = x.size();
  auto xpos = [&](size_t i) { return left + (n > 1 ? plot_w * (0.05 + 0.9 * static_cast<double>(i) / (n - 1)) : plot_w / 2.0); };
  std::string s = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect x=\"0\" y=\"0\" width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{3}</text>\n",
      width, height, width / 2, esc(title));
  for (size_t k = 0, lx = left + 10; k < series.size(); ++k) {  // legend, ~7 px per character
    s += fmt::format("<rect x=\"{}\" y=\"42\" width=\"14\" height=\"4\" fill=\"{}\"/><text x=\"{}\" y=\"48\">{}</text>\n",
                     lx, colors[k % 4], lx + 20, esc(series[k].name));
    lx += 40 + 7 * series[k].name.size();
  }
  for (double t = 0; t <= ytop + step * 1e-9; t += step)
    s += fmt::format("<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#ddd\"/>"
                     "<text x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>\n",
                     left, ypos(t), left + plot_w, left - 6, ypos(t) + 4, fmt::format("{:g}", t));
  s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"black\"/>"
                   "<line x1=\"{0}\" y1=\"{2}\" x2=\"{3}\" y2=\"{2}\" stroke=\"black\"/>\n",
                   left, top, y1, left + plot_w);
  for (size_t i = 0; i < n; ++i)
    s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", xpos(i), y1 + 18,
                     fmt::format("{:g}", x[i]));
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", left + plot_w / 2, y1 + 42,
                   esc(x_label));
  s += fmt::format("<text transform=\"translate({},{}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n", left - 62,
                   top + plot_h / 2, esc(y_label));
  for (size_t k = 0; k < series.size(); ++k) {
    const LineSeries& l = series[k];
    std::string pts;
    for (size_t i = 0; i < n && i < l.y.size(); ++i) pts += fmt::format("{:.1f},{:.1f} ", xpos(i), ypos(l.y[i]));
    s += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>\n", pts, colors[k % 4]);
    for (size_t i = 0; i < n && i < l.y.size(); ++i)
      s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"4\" fill=\"{}\"><title>{} at {:g}: {:.1f}</title></circle>"
                       "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"{}\">{}</text>\n",
                       xpos(i), ypos(l.y[i]), colors[k % 4], esc(l.name), x[i], l.y[i], xpos(i),
                       ypos(l.y[i]) - 8 - 14.0 * static_cast<double>(k), colors[k % 4],
                       l.y[i] >= 100 ? fmt::format("{:.0f}", l.y[i]) : fmt::format("{:.1f}", l.y[i]));
  }
  s += "</svg>\n";
  return s;
}

void write_file_atomic(const std::string& path, const std::string& content) {
  const std::string tmp = fmt::format("{}.tmp.{}", path, static_cast<long>(::getpid()));
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error(fmt::format("cannot write '{}' (temporary file for '{}')", tmp, path));
    f << content;
    f.flush();
    if (!f) {
      std::remove(tmp.c_str());
      throw Error(fmt::format("writing '{}' failed", tmp));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(fmt::format("cannot rename '{}' to '{}'", tmp, path));
  }
}

}  // namespace contrail::bench
