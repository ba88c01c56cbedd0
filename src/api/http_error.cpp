#include "api/http_error.hpp"

#include "core/error_body.hpp"

#include <boost/json/serialize.hpp>

namespace spool {
namespace json = boost::json;

int http_status(Errc code) {
  switch (code) {
    case Errc::invalid_request:
      return 400;
    case Errc::unauthorized:
      return 401;
    case Errc::forbidden:
      return 403;
    case Errc::not_found:
    case Errc::route_not_found:
      return 404;
    case Errc::method_not_allowed:
      return 405;
    case Errc::conflict:
      return 409;
    case Errc::too_large:
      return 413;
    case Errc::overloaded:
      return 529;
    case Errc::upstream:
      return 502;
    case Errc::broker_unavailable:
      return 503;
    case Errc::internal:
      return 500;
  }
  return 500;
}

http::Response error_response(const Error& e, std::optional<std::string_view> request_id) {
  http::Response r;
  r.status = http_status(e.code);
  switch (e.code) {
    case Errc::not_found:
      r.body = json::serialize(json::object{{"detail", e.explanation}});
      break;
    case Errc::unauthorized:
      r.body = R"({"detail":"Not authenticated"})";
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      break;
    case Errc::route_not_found:
      r.body = R"({"detail":"Not Found"})";
      break;
    case Errc::method_not_allowed:
      r.body = R"({"detail":"Method Not Allowed"})";
      break;
    default:
      r.body = error_body_text(e, request_id, &r.null_request_id_at);
      break;
  }
  return r;
}

}  // namespace spool
