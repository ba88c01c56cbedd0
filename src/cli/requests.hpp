// Pure pieces of the command-line client: request bodies, URLs, and what the server's answers mean.
#pragma once

#include "core/result.hpp"

#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spool::cli {

// Exit codes of the client subcommands (also listed by exit_codes_help()).
namespace exit_code {
inline constexpr int ok = 0;
inline constexpr int job_failed = 1;  // the job ended in error, or someone else cancelled it
inline constexpr int usage = 2;
inline constexpr int unreachable = 3;
inline constexpr int unauthorized = 4;
inline constexpr int not_found = 5;
inline constexpr int refused = 6;  // any other refusal by the server
inline constexpr int interrupted = 130;
inline constexpr int output_closed = 141;  // as if killed by SIGPIPE, which the client ignores
}  // namespace exit_code

// The exit-code table as help text (one code a line).
std::string exit_codes_help();

// What `spool chat` and `spool start` ask for.
struct ChatParams {
  std::string prompt;
  std::string model;   // empty: the server's default
  std::string system;  // empty: none
  std::int64_t max_tokens = 1024;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::vector<std::string> stop_sequences;
  std::optional<std::int64_t> thinking_budget;  // set: thinking enabled with this budget_tokens
};

// The JSON body of POST /v1/messages/async (SPEC §2) for `p`, compact.
std::string chat_body(const ChatParams& p);

// `url` without trailing slashes when it is an http:// or https:// URL with a host and no query or
// fragment (a path prefix is kept); otherwise an invalid_request Error saying what is wrong.
Result<std::string> normalize_base_url(std::string_view url);

// `s` percent-encoded so that it is one path segment or one query value (RFC 3986 unreserved kept).
std::string percent_encode(std::string_view s);

// The query string of GET /v1/messages/async: "" or "?status=..&limit=..&cursor=..", empty parts left out.
std::string list_query(std::string_view statuses, std::int64_t limit, std::string_view cursor);

// The exit code for a refusal with HTTP status `status`: 401 → 4, 404 → 5, anything else → 6.
int exit_code_for_http_status(int status);

// The human explanation in an error body (SPEC §5): error.detail.explanation, else `detail`
// (schema failures' lists rendered as "loc: msg; ..."), else error.message; empty when there is none.
std::string error_explanation(std::string_view body);
// The same for a parsed body (also an SSE `error` event, which carries the §5 body).
std::string error_explanation_of(const boost::json::value& body);

// True when a 404 body is the router's "no such route" rather than "no such stream".
bool is_route_not_found(std::string_view body);

// The reason in a stream_request() error without its "upstream HOST:PORT: " prefix
// ("connection refused", "connect timeout: ...").
std::string transport_reason(const Error& e);

}  // namespace spool::cli
