#include "engine/stop_matcher.hpp"

#include <algorithm>
#include <utility>

namespace spool {

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

StopMatcher::Step StopMatcher::feed(std::string_view delta) {
  Step step;
  if (stops_.empty()) {
    step.emit.assign(delta);
    return step;
  }
  held_.append(delta);
  std::size_t best = std::string::npos;
  const std::string* hit = nullptr;
  for (const auto& s : stops_) {
    const std::size_t p = held_.find(s);
    if (p != std::string::npos && p < best) {
      best = p;
      hit = &s;
    }
  }
  if (hit) {
    step.emit = held_.substr(0, best);
    step.stop = *hit;
    held_.clear();
    return step;
  }
  // Hold back the longest suffix that is a proper prefix of some stop sequence.
  std::size_t keep = 0;
  for (const auto& s : stops_) {
    const std::size_t max = std::min(s.size() - 1, held_.size());
    for (std::size_t n = max; n > keep; --n) {
      if (held_.compare(held_.size() - n, n, s, 0, n) == 0) {
        keep = n;
        break;
      }
    }
  }
  step.emit = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return step;
}

std::string StopMatcher::flush() { return std::exchange(held_, {}); }

}  // namespace spool
