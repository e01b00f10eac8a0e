#include "contrail/engine/stop_strings.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "contrail/core/error.h"

namespace contrail::engine {

StopMatcher::StopMatcher(std::vector<std::string> stops) {
  for (std::string& s : stops) {
    if (s.empty()) continue;
    if (s.size() > kMaxStopBytes)
      throw InvalidArgument(fmt::format("stop string of {} bytes exceeds the limit of {}", s.size(), kMaxStopBytes));
    stops_.push_back(std::move(s));
  }
  if (stops_.size() > kMaxStops)
    throw InvalidArgument(fmt::format("{} stop strings exceed the limit of {}", stops_.size(), kMaxStops));
}

std::string StopMatcher::push(std::string_view text) {
  if (stopped_) return {};
  held_.append(text);
  if (stops_.empty()) return std::exchange(held_, std::string());
  // Earliest full occurrence of any stop string.
  size_t cut = std::string::npos;
  for (const std::string& s : stops_) {
    const size_t at = held_.find(s);
    if (at < cut) cut = at, matched_ = s;
  }
  if (cut != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, cut);
    held_.clear();
    return out;
  }
  // Hold back the longest suffix that is a proper prefix of some stop string.
  size_t keep = 0;
  for (const std::string& s : stops_)
    for (size_t len = std::min(s.size() - 1, held_.size()); len > keep; --len)
      if (held_.compare(held_.size() - len, len, s, 0, len) == 0) {
        keep = len;
        break;
      }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopMatcher::flush() {
  if (stopped_) return {};
  return std::exchange(held_, std::string());
}

}  // namespace contrail::engine
