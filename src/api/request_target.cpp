#include "api/request_target.hpp"

#include <boost/url/parse.hpp>

#include <algorithm>
#include <charconv>
#include <limits>

namespace spool {

Result<Target> parse_target(std::string_view target, const std::vector<std::string>& prefix) {
  auto parsed = boost::urls::parse_origin_form(target);
  if (!parsed) return make_error(Errc::invalid_request, "Malformed request target");
  Target t;
  t.url = *parsed;
  for (auto seg : t.url.segments()) t.segments.push_back(seg);
  if (!t.segments.empty() && t.segments.back().empty()) t.segments.pop_back();  // trailing slash
  if (!prefix.empty() && t.segments.size() >= prefix.size() &&
      std::equal(prefix.begin(), prefix.end(), t.segments.begin())) {
    t.segments.erase(t.segments.begin(), t.segments.begin() + static_cast<std::ptrdiff_t>(prefix.size()));
  }
  return t;
}

namespace {

// Decimal digits only (no sign, no space), at most `most_digits` of them.
template <class T>
std::optional<T> decimal(std::string_view s, std::size_t most_digits) {
  if (s.empty() || s.size() > most_digits) return std::nullopt;
  T v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::optional<EventId> parse_event_id(std::string_view s) {
  const auto dot = s.find('.');
  auto position = decimal<std::uint64_t>(s.substr(0, dot), 19);
  if (!position) return std::nullopt;
  if (dot == std::string_view::npos) return EventId{*position, 1};
  auto incarnation = decimal<std::uint32_t>(s.substr(dot + 1), 10);
  if (!incarnation || *incarnation == 0) return std::nullopt;
  return EventId{*position, *incarnation};
}

// The hex of "<created_at µs> <id>".
std::string encode_list_cursor(SysTime created_at, std::string_view id) {
  const std::string raw =
      std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(created_at.time_since_epoch()).count()) +
      ' ' + std::string(id);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (const unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::optional<std::pair<SysTime, std::string>> decode_list_cursor(std::string_view hex) {
  if (hex.empty() || hex.size() % 2 != 0 || hex.size() > 1200) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string raw;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]);
    const int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    raw.push_back(static_cast<char>(hi * 16 + lo));
  }
  const auto space = raw.find(' ');
  if (space == std::string::npos || space == 0 || space + 1 == raw.size()) return std::nullopt;
  // Only the canonical form (digits, no sign, no leading zero): one cursor per position.
  if (!std::all_of(raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>(space),
                   [](char c) { return c >= '0' && c <= '9'; }) ||
      (raw[0] == '0' && space > 1)) {
    return std::nullopt;
  }
  std::int64_t us = 0;
  auto [p, ec] = std::from_chars(raw.data(), raw.data() + space, us);
  // Up to what SysTime holds (nanoseconds in 64 bits: until 2262); beyond is no cursor of ours.
  constexpr std::int64_t kMostMicros = std::numeric_limits<std::int64_t>::max() / 1000;
  if (ec != std::errc() || p != raw.data() + space || us < 0 || us > kMostMicros) return std::nullopt;
  return std::make_pair(SysTime(std::chrono::duration_cast<SysTime::duration>(std::chrono::microseconds(us))),
                        raw.substr(space + 1));
}

}  // namespace spool
