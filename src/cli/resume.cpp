#include "cli/resume.hpp"

#include <algorithm>
#include <charconv>

namespace spool::cli {

namespace {
constexpr std::chrono::milliseconds kFirstDelay{200};
constexpr std::chrono::milliseconds kMaxDelay{2000};
}  // namespace

ResumeTracker::ResumeTracker(std::uint64_t from, std::chrono::milliseconds retry_for, bool reached,
                             Clock::time_point now)
    : last_id_(from), retry_for_(retry_for), reached_(reached), delay_(kFirstDelay) {
  if (reached) lost_since_ = now;
}

void ResumeTracker::event(std::string_view id) {
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), n);
  last_id_ = !id.empty() && ec == std::errc() && end == id.data() + id.size() ? n : last_id_ + 1;
  got_events_ = true;
}

void ResumeTracker::attempt_ended(bool answered, Clock::time_point now) {
  if (answered) {
    reached_ = true;
    lost_since_ = now;
  } else if (!lost_since_) {
    lost_since_ = now;
  }
  if (got_events_) delay_ = kFirstDelay;
  got_events_ = false;
}

std::optional<std::chrono::milliseconds> ResumeTracker::next_delay(Clock::time_point now) {
  if (lost_since_ && now - *lost_since_ >= retry_for_) return std::nullopt;
  const auto d = delay_;
  delay_ = std::min(delay_ * 2, kMaxDelay);
  return d;
}

}  // namespace spool::cli
