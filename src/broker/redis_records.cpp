#include "broker/redis_records.hpp"

#include <algorithm>
#include <charconv>
#include <map>

namespace spool {

namespace {

SysTime from_ms(std::int64_t ms) { return SysTime(std::chrono::milliseconds(ms)); }

}  // namespace

std::optional<StreamStatus> parse_status(std::string_view s) {
  for (auto st : kStatuses) {
    if (to_string(st) == s) return st;
  }
  return std::nullopt;
}

bool is_terminal_event(std::string_view type) { return type == "message_stop" || type == kErrorEventType; }

std::int64_t to_int(std::string_view s, std::int64_t fallback) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc{} ? v : fallback;
}

std::optional<StreamInfo> parse_meta(const std::string& id, const RedisValue& r, std::string* owner) {
  if (!r.is_array() || r.elements.empty()) return std::nullopt;
  std::map<std::string, std::string, std::less<>> f;
  for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2) f[r.elements[i].str] = r.elements[i + 1].str;
  auto get = [&](std::string_view k) -> std::string_view {
    auto it = f.find(k);
    return it == f.end() ? std::string_view{} : std::string_view(it->second);
  };
  StreamInfo info;
  info.id = id;
  info.status = parse_status(get("status")).value_or(StreamStatus::pending);
  info.created_at = from_ms(to_int(get("created_at")));
  info.updated_at = from_ms(to_int(get("updated_at")));
  if (!get("completed_at").empty()) info.completed_at = from_ms(to_int(get("completed_at")));
  if (f.count("error_message")) info.error_message = std::string(get("error_message"));
  info.message_count = static_cast<int>(to_int(get("message_count")));
  info.thinking_enabled = get("thinking") == "1";
  info.model = std::string(get("model"));
  info.events = static_cast<std::uint64_t>(to_int(get("events")));
  info.usage = Usage{to_int(get("input_tokens")), to_int(get("output_tokens"))};
  if (!get("queue_position").empty()) info.queue_position = static_cast<int>(to_int(get("queue_position")));
  info.incarnation = static_cast<std::uint32_t>(std::clamp<std::int64_t>(to_int(get("incarnation"), 1), 1, UINT32_MAX));
  if (owner != nullptr) *owner = std::string(get("owner"));
  return info;
}

int remote_observers(const RedisValue& counts, const RedisValue& live, const std::string& self) {
  int n = 0;
  for (std::size_t i = 0; counts.is_array() && i + 1 < counts.elements.size(); i += 2) {
    const std::string& inst = counts.elements[i].str;
    if (inst == self) continue;
    const bool alive = live.is_array() && std::any_of(live.elements.begin(), live.elements.end(),
                                                      [&](const RedisValue& v) { return v.str == inst; });
    if (alive) n += static_cast<int>(to_int(counts.elements[i + 1].str));
  }
  return n;
}

Error refused(const RedisValue& v, std::string_view what) {
  return make_error(Errc::broker_unavailable, "Redis refused " + std::string(what) + ": " + v.str);
}

Status first_refusal(const std::vector<RedisValue>& replies, std::string_view what) {
  for (const auto& v : replies) {
    if (v.is_error()) return refused(v, what);
  }
  return Ok{};
}

std::string encode_keyed(const KeyedJob& j) { return j.digest + ' ' + j.id; }

std::optional<KeyedJob> decode_keyed(std::string_view v) {
  const auto space = v.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  return KeyedJob{std::string(v.substr(space + 1)), std::string(v.substr(0, space))};
}

}  // namespace spool
