// What the routes read off a request besides its target: who asks (secret, request id, trace
// context), what it sends (a JSON chat body, list parameters), and how to recognise a repeat.
#pragma once

#include "api/request_target.hpp"
#include "broker/broker.hpp"
#include "http/message.hpp"
#include "stream/chat_request.hpp"

#include <boost/url/params_view.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace spool {

// True when a and b are equal, in time that depends only on their lengths.
bool constant_time_equal(std::string_view a, std::string_view b);

// True when the Content-Type header (null: absent) is application/json, parameters aside.
bool is_json_content_type(const std::string* ct);

// A digest of `a` and `b` together (FNV-1a 64): tells a repeated request from a different one.
std::uint64_t fnv1a(std::string_view a, std::string_view b);

// The caller's X-Request-Id when it is a plain token (up to 128 of A-Z a-z 0-9 . _ -), else a new id.
std::string request_id_of(const http::Request& req);

// Puts `id` in a §5 error body whose request_id is null (where error_response left it: no parsing).
void stamp_request_id(http::Response& r, const std::string& id);

// The W3C traceparent header when well formed (version 00-fe, non-zero ids), else empty.
std::string valid_traceparent(const std::string* h);

// Fills `chat`'s trace context (traceparent, tracestate) from the request's headers.
void take_trace_context(const http::Request& req, ChatRequest& chat);

// The chat body (§2), after checking its content type.
Result<ChatRequest> parse_body(const http::Request& req);

// The list route's query: ?status=a,b, ?limit=1..1000, ?cursor= (the owner is the caller's to set).
Result<ListQuery> parse_list_query(const boost::urls::params_view& params);

}  // namespace spool
