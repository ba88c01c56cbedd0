#include "cli/resume.hpp"

#include <algorithm>
#include <charconv>
#include <tuple>
#include <utility>

namespace spool::cli {

namespace {
constexpr std::chrono::milliseconds kFirstDelay{200};
constexpr std::chrono::milliseconds kMaxDelay{2000};

// Decimal digits only, all of `s`.
template <class T>
std::optional<T> decimal(std::string_view s) {
  T v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// The (position, incarnation) of an SSE id "N" or "N.I".
std::optional<std::pair<std::uint64_t, std::uint32_t>> parse_id(std::string_view id) {
  const auto dot = id.find('.');
  const auto position = decimal<std::uint64_t>(id.substr(0, dot));
  if (!position) return std::nullopt;
  if (dot == std::string_view::npos) return std::pair{*position, std::uint32_t{1}};
  const auto incarnation = decimal<std::uint32_t>(id.substr(dot + 1));
  if (!incarnation || *incarnation == 0) return std::nullopt;
  return std::pair{*position, *incarnation};
}

}  // namespace

ResumeTracker::ResumeTracker(std::string_view from, std::chrono::milliseconds retry_for, bool reached,
                             Clock::time_point now)
    : retry_for_(retry_for), reached_(reached), delay_(kFirstDelay) {
  if (auto id = parse_id(from)) std::tie(position_, incarnation_) = *id;
  if (reached) lost_since_ = now;
}

bool ResumeTracker::is_event_id(std::string_view id) { return parse_id(id).has_value(); }

void ResumeTracker::event(std::string_view id) {
  if (auto parsed = parse_id(id)) {
    std::tie(position_, incarnation_) = *parsed;
  } else {
    ++position_;
  }
  got_events_ = true;
}

std::string ResumeTracker::last_event_id() const {
  if (position_ == 0) return {};
  std::string id = std::to_string(position_);
  if (incarnation_ > 1) id += "." + std::to_string(incarnation_);
  return id;
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
