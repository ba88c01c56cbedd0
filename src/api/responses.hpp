// JSON the routes answer with: a response with a body, and a stream's record as /status shows it.
#pragma once

#include "http/message.hpp"
#include "stream/stream_info.hpp"

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace spool {

// A response with `status` and `body` (application/json).
http::Response json_response(int status, std::string body);

// `t` as RFC 3339, or JSON null.
boost::json::value time_or_null(const std::optional<SysTime>& t);

// `v` as a Prometheus label value: backslash, quote and newline escaped.
std::string prometheus_label(std::string_view v);

// A stream's record as /status answers it (§1.3); the list shows the same object per stream.
boost::json::object status_object(const StreamInfo& i);
std::string status_json(const StreamInfo& i);

}  // namespace spool
