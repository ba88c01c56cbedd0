// How the Redis broker's values read back: a stream's record, status names, observer counts,
// Idempotency-Key bindings.
#pragma once

#include "broker/broker.hpp"
#include "broker/redis_connection.hpp"
#include "stream/stream_info.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spool {

// Every stream status.
inline constexpr std::array kStatuses{StreamStatus::pending, StreamStatus::processing, StreamStatus::completed,
                                      StreamStatus::cancelled, StreamStatus::error};

// The type of the event that ends a stream with an error.
inline constexpr std::string_view kErrorEventType = "error";

// The status a wire name names; nullopt for none.
std::optional<StreamStatus> parse_status(std::string_view s);

// True for the event types that end a stream's log.
bool is_terminal_event(std::string_view type);

// A decimal integer, or `fallback` when `s` is not one.
std::int64_t to_int(std::string_view s, std::int64_t fallback = 0);

// A stream's record from its meta hash (HGETALL reply), its owner into `owner` when given; nullopt
// when there is none.
std::optional<StreamInfo> parse_meta(const std::string& id, const RedisValue& r, std::string* owner = nullptr);

// Observers other live instances reported: `counts` is HGETALL of a stream's observers hash,
// `live` the instances whose lease runs.
int remote_observers(const RedisValue& counts, const RedisValue& live, const std::string& self);

// An error reply where data was expected: Redis could not answer, which never means "absent".
Error refused(const RedisValue& v, std::string_view what);

// The first error reply among `replies`, as refused(); Ok when there is none.
Status first_refusal(const std::vector<RedisValue>& replies, std::string_view what);

// An Idempotency-Key's value in Redis: "<digest> <id>".
std::string encode_keyed(const KeyedJob& j);
// The job an Idempotency-Key's value names; nullopt when it is not one.
std::optional<KeyedJob> decode_keyed(std::string_view v);

}  // namespace spool
