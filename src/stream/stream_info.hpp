// What a stream is: its status and the facts /status reports.
#pragma once

#include "core/clock.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace spool {

// Lifecycle of a stream (§4.1). Terminal statuses never change again.
enum class StreamStatus { pending, processing, completed, cancelled, error };

// Wire name of a status.
std::string_view to_string(StreamStatus s);

// True for completed, cancelled and error.
inline bool is_terminal(StreamStatus s) { return s != StreamStatus::pending && s != StreamStatus::processing; }

// How long an id's incarnation is remembered after its stream is removed (deleted or expired):
// a stream created again under the id within this time gets the next incarnation (SPEC §1.2).
inline constexpr std::chrono::hours kIncarnationMemory{24};
// The most removed ids whose incarnation is remembered at once (the oldest are forgotten first).
inline constexpr std::size_t kMostTombstones = 1'000'000;

// Token counts of one reply.
struct Usage {
  std::int64_t input_tokens = 0;
  std::int64_t output_tokens = 0;
};

// One event of a stream's log: its SSE type and its JSON, serialized once.
struct NewEvent {
  std::string type;
  std::string json;
};

// A snapshot of one stream's record, as /status shows it.
struct StreamInfo {
  std::string id;
  StreamStatus status = StreamStatus::pending;
  SysTime created_at{};
  SysTime updated_at{};
  std::optional<SysTime> completed_at;
  std::optional<std::string> error_message;
  int message_count = 0;
  bool thinking_enabled = false;
  std::string model;
  std::uint64_t events = 0;
  int observers = 0;
  Usage usage;
  std::optional<int> queue_position;
  std::uint32_t incarnation = 1;  // which use of the id this is (1 = first; SPEC §1.2)
};

}  // namespace spool
