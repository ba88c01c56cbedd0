// The §5 error body, shared by HTTP error responses and `error` events.
#pragma once

#include "core/result.hpp"

#include <boost/json/object.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace spool {

// {"type":"error","error":{...},"request_id":...,"exception":{...},"detail":X} for `e`; error.message is the
// kind's title followed by ": " and e.explanation, cut at 1000 bytes (§5: M carries the reason).
boost::json::object error_body(const Error& e, std::optional<std::string_view> request_id);

// error_body() as JSON text, serialized once; without a request id, *null_request_id_at (when given) is
// set to the offset of its `null`, so the id can be put there later without parsing the text again.
std::string error_body_text(const Error& e, std::optional<std::string_view> request_id,
                            std::size_t* null_request_id_at = nullptr);

}  // namespace spool
