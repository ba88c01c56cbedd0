// The request target of an HTTP request (path and query): the parts every route reads, kept
// free of the network and the domain so they can be fuzzed on their own (fuzz/).
#pragma once

#include "core/clock.hpp"
#include "core/result.hpp"
#include "stream/event_log.hpp"

#include <boost/url/url_view.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spool {

// A parsed origin-form target: its URL (views `target`, which must outlive it) and its path
// segments, decoded, without a trailing empty one and without the server's path prefix.
struct Target {
  boost::urls::url_view url;
  std::vector<std::string> segments;
};

// Parses `target` ("/a/b?x=y"); removes `prefix` (path segments) when the path starts with it.
// invalid_request "Malformed request target" when it is not an origin-form target.
Result<Target> parse_target(std::string_view target, const std::vector<std::string>& prefix);

// A Last-Event-ID (or ?last_event_id=) value (SPEC §1.2): "N", a non-negative decimal event
// position of an id's first incarnation, or "N.I", of its incarnation I ≥ 1 (to_string(EventId)'s
// form; "N.1" is accepted too).
std::optional<EventId> parse_event_id(std::string_view s);

// The list route's cursor naming a stream (its created_at and id): opaque lowercase hex.
std::string encode_list_cursor(SysTime created_at, std::string_view id);
// The (created_at, id) a cursor names, or nullopt when it is not one encode_list_cursor made.
std::optional<std::pair<SysTime, std::string>> decode_list_cursor(std::string_view hex);

}  // namespace spool
