// Stop strings matched across token boundaries in streamed text (OpenAI `stop`).
//
// Contract: feed the decoded text of each new token with push(); it returns the text that can be
// shown now. Text that might be the beginning of a stop string is held back until it is known not
// to be one. When a stop string appears, everything before its first occurrence is released, the
// stop string and anything after it never are, and stopped() becomes true (later pushes return "").
// flush() releases what is held at the end of generation. The concatenation of all returned text
// is the generated text cut before the earliest occurrence of any stop string.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace contrail::engine {

class StopMatcher {
 public:
  // Empty strings are ignored. Throws InvalidArgument for more than kMaxStops strings or one
  // longer than kMaxStopBytes (naming the value and the limit).
  static constexpr size_t kMaxStops = 16;
  static constexpr size_t kMaxStopBytes = 1024;
  explicit StopMatcher(std::vector<std::string> stops = {});

  std::string push(std::string_view text);
  std::string flush();
  bool stopped() const { return stopped_; }
  // The stop string that matched ("" until stopped()).
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;  // text not yet released: a suffix that may start a stop string
  bool stopped_ = false;
  std::string matched_;
};

}  // namespace contrail::engine
