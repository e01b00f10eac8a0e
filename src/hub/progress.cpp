// Terminal progress display for pulls: one line per finished file, and a live line for the file in
// flight with the total (bytes, rate over the bytes actually transferred, ETA).
#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include "contrail/hub/hub.h"

namespace contrail::hub {
namespace {

using Clock = std::chrono::steady_clock;

std::string human_bytes(double b) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024.0 && u < 4) b /= 1024.0, ++u;
  return u == 0 ? fmt::format("{:.0f} {}", b, units[u]) : fmt::format("{:.1f} {}", b, units[u]);
}

std::string human_duration(double s) {
  if (!(s >= 0) || s > 359999) return "--:--";
  const auto t = static_cast<long>(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60) : fmt::format("{}:{:02}", t / 60, t % 60);
}

int terminal_width() {
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40) return ws.ws_col;
  return 160;  // not a terminal (a log file): no wrapping to avoid, keep names whole
}

// Middle-elides `s` to at most `width` characters.
std::string fit(const std::string& s, size_t width) {
  if (s.size() <= width) return s;
  const size_t keep = width - 3;
  return s.substr(0, keep / 2) + "..." + s.substr(s.size() - (keep - keep / 2));
}

class Bar {
 public:
  void update(const PullProgress& p) {
    const auto now = Clock::now();
    const std::string path = p.file ? p.file->path : std::string();
    if (path != path_) {
      if (!path_.empty()) std::fputc('\n', stderr);  // keep the finished file's line
      path_ = path;
      file_done_ = p.file_done;  // bytes already on disk are not counted towards the rate
    } else if (p.file_done > file_done_) {
      transferred_ += p.file_done - file_done_;
      file_done_ = p.file_done;
    } else {
      file_done_ = p.file_done;  // restarted from scratch
    }
    const bool file_complete = p.file && p.file_done == p.file->size;
    if (!p.finished && !file_complete && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    if (p.finished) {
      std::fflush(stderr);
      return;
    }
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0.2 ? static_cast<double>(transferred_) / elapsed : 0.0;
    const double eta = rate > 0 ? static_cast<double>(p.total_bytes - p.total_done) / rate : -1.0;
    const double frac = p.file->size > 0 ? static_cast<double>(p.file_done) / static_cast<double>(p.file->size) : 1.0;
    constexpr int kBar = 20;
    const int filled = static_cast<int>(frac * kBar);
    const std::string tail =
        fmt::format(" [{}{}] {:3.0f}% {}/{} | total {}/{} files {}/{} {}/s ETA {}", std::string(filled, '#'),
                    std::string(kBar - filled, '.'), frac * 100, human_bytes(static_cast<double>(p.file_done)),
                    human_bytes(static_cast<double>(p.file->size)), p.files_done, p.n_files,
                    human_bytes(static_cast<double>(p.total_done)), human_bytes(static_cast<double>(p.total_bytes)),
                    human_bytes(rate), file_complete && p.files_done == p.n_files ? "0:00" : human_duration(eta));
    const int width = terminal_width() - 1;
    const size_t path_width = static_cast<size_t>(std::max(24, width - static_cast<int>(tail.size())));
    std::fprintf(stderr, "\r%s%s\033[K", fit(path, path_width).c_str(), tail.c_str());
    std::fflush(stderr);
  }

 private:
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_draw_{};
  std::string path_;
  int64_t file_done_ = 0;
  int64_t transferred_ = 0;  // bytes received over the network since the pull started
};

}  // namespace

ProgressCallback stderr_progress_bar() {
  auto bar = std::make_shared<Bar>();
  return [bar](const PullProgress& p) { bar->update(p); };
}

}  // namespace contrail::hub
