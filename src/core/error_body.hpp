// The §5 error body, shared by HTTP error responses and `error` events.
#pragma once

#include "core/result.hpp"

#include <boost/json/object.hpp>

#include <optional>
#include <string_view>

namespace spool {

// {"type":"error","error":{...},"request_id":...,"exception":{...},"detail":X} for `e`.
boost::json::object error_body(const Error& e, std::optional<std::string_view> request_id);

}  // namespace spool
