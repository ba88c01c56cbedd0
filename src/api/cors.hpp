// Cross-origin requests from browsers (SPEC §6 "Browsers"): which pages on other origins may call
// the API, the answers to their preflights and the headers that let them read the responses.
#pragma once

#include "core/result.hpp"
#include "http/message.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spool {

// Off when `origins` is empty.
struct CorsPolicy {
  std::vector<std::string> origins;   // "scheme://host[:port]" (lowercase, no path), or "*" for any
  std::chrono::seconds max_age{600};  // how long a browser may cache a preflight's answer
};

// The policy for configured origins, each normalized (lowercased, one trailing '/' dropped), or
// an error naming the first value that is neither "*" nor an origin ("https://app.example.com").
Result<CorsPolicy> make_cors_policy(const std::vector<std::string>& origins, std::chrono::seconds max_age);

// True when a page on `origin` (an Origin header's value) may call the API.
bool cors_allows(const CorsPolicy& p, std::string_view origin);

// The answer to a preflight (OPTIONS with Origin and Access-Control-Request-Method) when CORS is
// on: 204 with the allowed methods and headers for an allowed origin, else 403. nullopt for any
// other request.
std::optional<http::Response> cors_preflight(const CorsPolicy& p, const http::Request& req);

// Adds what a browser needs to let the page on the request's origin read `r` (when allowed), and
// `Vary: Origin` to every response while CORS is on.
void add_cors_headers(const CorsPolicy& p, const http::Request& req, http::Response& r);

}  // namespace spool
