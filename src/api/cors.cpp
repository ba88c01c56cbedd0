#include "api/cors.hpp"

#include "api/http_error.hpp"

#include <algorithm>
#include <cctype>

namespace spool {
namespace {

constexpr std::string_view kMethods = "GET, POST, DELETE, OPTIONS";
constexpr std::string_view kHeaders = "Authorization, Content-Type, Last-Event-ID, Idempotency-Key, X-Request-Id";
constexpr std::string_view kExposed = "request-id";
constexpr std::size_t kMaxAskedHeaders = 1024;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// True for "scheme://authority" with a scheme of letters, digits, '+', '-', '.', and an authority
// without path, query, userinfo or whitespace.
bool is_origin(std::string_view o) {
  const auto sep = o.find("://");
  if (sep == std::string_view::npos || sep == 0 || sep + 3 == o.size()) return false;
  const auto scheme_ok = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
  };
  if (!std::all_of(o.begin(), o.begin() + static_cast<std::ptrdiff_t>(sep), scheme_ok)) return false;
  const std::string_view authority = o.substr(sep + 3);
  return authority.find_first_of("/?#@ \t\r\n") == std::string_view::npos;
}

// kHeaders, and the headers the preflight asks for when they are a plain list of names (SDKs send
// their own, such as anthropic-version): which headers a page sends is not what protects the API.
std::string allowed_headers(const http::Request& req) {
  std::string out(kHeaders);
  const std::string* asked = req.header("access-control-request-headers");
  if (asked == nullptr || asked->empty() || asked->size() > kMaxAskedHeaders) return out;
  const auto name_or_list = [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == ',' || c == ' ';
  };
  if (!std::all_of(asked->begin(), asked->end(), name_or_list)) return out;
  return out + ", " + *asked;
}

}  // namespace

Result<CorsPolicy> make_cors_policy(const std::vector<std::string>& origins, std::chrono::seconds max_age) {
  CorsPolicy p;
  p.max_age = max_age;
  for (const auto& raw : origins) {
    std::string o = lower(raw);
    if (o.ends_with('/')) o.pop_back();
    if (o != "*" && !is_origin(o)) {
      return make_error(Errc::invalid_request, "cors_origins: '" + raw +
                                                   "' is not an origin (scheme://host[:port], e.g. "
                                                   "https://app.example.com) or '*'");
    }
    p.origins.push_back(std::move(o));
  }
  return p;
}

bool cors_allows(const CorsPolicy& p, std::string_view origin) {
  const std::string o = lower(origin);
  return std::any_of(p.origins.begin(), p.origins.end(), [&](const std::string& a) { return a == "*" || a == o; });
}

std::optional<http::Response> cors_preflight(const CorsPolicy& p, const http::Request& req) {
  if (p.origins.empty() || req.method != "OPTIONS") return std::nullopt;
  const std::string* origin = req.header("origin");
  if (origin == nullptr || req.header("access-control-request-method") == nullptr) return std::nullopt;
  if (!cors_allows(p, *origin)) {
    return error_response(make_error(Errc::forbidden, "Origin " + *origin + " is not in cors_origins"));
  }
  http::Response r;
  r.status = 204;
  r.content_type.clear();
  r.headers.emplace_back("Access-Control-Allow-Methods", kMethods);
  r.headers.emplace_back("Access-Control-Allow-Headers", allowed_headers(req));
  r.headers.emplace_back("Access-Control-Max-Age", std::to_string(p.max_age.count()));
  return r;
}

void add_cors_headers(const CorsPolicy& p, const http::Request& req, http::Response& r) {
  if (p.origins.empty()) return;
  r.headers.emplace_back("Vary", "Origin");
  const std::string* origin = req.header("origin");
  if (origin == nullptr || !cors_allows(p, *origin)) return;
  r.headers.emplace_back("Access-Control-Allow-Origin", *origin);
  r.headers.emplace_back("Access-Control-Expose-Headers", kExposed);
}

}  // namespace spool
