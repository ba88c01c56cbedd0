// The edge: turns protocol-agnostic Errors into HTTP status codes and §5 bodies. The only place that does.
#pragma once

#include "core/result.hpp"
#include "http/message.hpp"

#include <optional>
#include <string_view>

namespace spool {

// The HTTP status for an error code.
int http_status(Errc code);

// The complete response for `e` (404/401/405 use their short {"detail": ...} bodies).
http::Response error_response(const Error& e, std::optional<std::string_view> request_id = std::nullopt);

}  // namespace spool
