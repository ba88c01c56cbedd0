// Where a followed job stream stands and when to reconnect after the connection drops (SPEC §1.2).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace spool::cli {

// Tracks the last event id seen (stored events carry consecutive 1-based positions, "N", or "N.I"
// in a later incarnation of a reused id; pings have none), and paces reconnection: 0.2 s doubling to 2 s, back to 0.2 s
// after an attempt that delivered events, given up once `retry_for` has passed since the server was last reached.
class ResumeTracker {
 public:
  using Clock = std::chrono::steady_clock;

  // `from`: the id of the last event already seen ("" or "0": none; is_event_id). `reached`: the
  // server already answered at `now`.
  ResumeTracker(std::string_view from, std::chrono::milliseconds retry_for, bool reached, Clock::time_point now);

  // True for an SSE id of a stored event: "N" or "N.I" (decimal position, incarnation ≥ 1).
  static bool is_event_id(std::string_view id);

  // One stored event arrived with SSE id `id`; without one (or one that is not an event id), the
  // next position.
  void event(std::string_view id);
  // The Last-Event-ID for the next attempt, the whole id as the server wrote it; empty: send none.
  std::string last_event_id() const;
  // True once some attempt (or the caller before) reached the server.
  bool reached() const { return reached_; }

  // An attempt ended at `now` before the stream's end; `answered`: the server's response head had arrived.
  void attempt_ended(bool answered, Clock::time_point now);
  // The wait before the next attempt, or nullopt when retry_for has passed without reaching the server.
  std::optional<std::chrono::milliseconds> next_delay(Clock::time_point now);

 private:
  std::uint64_t position_ = 0;
  std::uint32_t incarnation_ = 1;
  std::chrono::milliseconds retry_for_;
  bool reached_;
  bool got_events_ = false;
  std::optional<Clock::time_point> lost_since_;
  std::chrono::milliseconds delay_;
};

}  // namespace spool::cli
