// What a stream is: its status and the facts /status reports.
#pragma once

#include "core/clock.hpp"

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
  std::uint32_t incarnation = 1;  // which use of the id: 1, then +1 after each delete (§1.2)
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
};

}  // namespace spool
