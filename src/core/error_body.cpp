#include "core/error_body.hpp"

#include "core/utf8.hpp"

#include <boost/json/serialize.hpp>

namespace spool {
namespace {

// Longest reason carried by error.message (the whole explanation stays in detail).
constexpr std::size_t kMaxReason = 1000;

struct Kind {
  std::string_view type, message, code, exception;
};

Kind kind_of(Errc c) {
  switch (c) {
    case Errc::invalid_request:
      return {"invalid_request_error", "Invalid Request Error", "INVALID_REQUEST_ERROR", "RequestValidationError"};
    case Errc::too_large:
      return {"request_too_large", "Request Too Large", "REQUEST_TOO_LARGE", "RequestTooLargeError"};
    case Errc::conflict:
      return {"invalid_request_error", "Conflict", "CONFLICT", "IdempotencyConflictError"};
    case Errc::overloaded:
      return {"overloaded_error", "Overloaded", "OVERLOADED_ERROR", "OverloadedError"};
    case Errc::upstream:
      return {"api_error", "API Error", "UPSTREAM_ERROR", "UpstreamError"};
    case Errc::broker_unavailable:
      return {"api_error", "Service Unavailable", "BROKER_UNAVAILABLE", "BrokerUnavailableError"};
    case Errc::not_found:
    case Errc::route_not_found:
      return {"not_found_error", "Not Found", "NOT_FOUND", "NotFoundError"};
    case Errc::unauthorized:
      return {"authentication_error", "Not Authenticated", "NOT_AUTHENTICATED", "AuthenticationError"};
    case Errc::forbidden:
      return {"permission_error", "Forbidden", "FORBIDDEN", "PermissionError"};
    case Errc::method_not_allowed:
      return {"invalid_request_error", "Method Not Allowed", "METHOD_NOT_ALLOWED", "MethodNotAllowedError"};
    case Errc::internal:
      break;
  }
  return {"api_error", "API Error", "API_ERROR", "InternalServerError"};
}

}  // namespace

boost::json::object error_body(const Error& e, std::optional<std::string_view> request_id) {
  const Kind k = kind_of(e.code);
  boost::json::value explanation = e.detail.is_null() ? boost::json::value(e.explanation) : e.detail;
  boost::json::object body;
  body["type"] = "error";
  std::string message(k.message);
  if (!e.explanation.empty()) message += ": " + bounded_text(e.explanation, kMaxReason);
  body["error"] = {
      {"type", k.type}, {"message", message}, {"detail", {{"code", k.code}, {"explanation", explanation}}}};
  body["request_id"] = request_id ? boost::json::value(*request_id) : boost::json::value(nullptr);
  body["exception"] = {{"type", k.exception}, {"message", e.explanation}};
  body["detail"] = std::move(explanation);
  return body;
}

std::string error_body_text(const Error& e, std::optional<std::string_view> request_id,
                            std::size_t* null_request_id_at) {
  const boost::json::object body = error_body(e, request_id);
  std::string out;
  for (const auto& kv : body) {  // the members in error_body's order, each serialized once
    out += out.empty() ? '{' : ',';
    out += boost::json::serialize(boost::json::string_view(kv.key()));
    out += ':';
    if (kv.key() == "request_id" && kv.value().is_null() && null_request_id_at != nullptr) {
      *null_request_id_at = out.size();
    }
    out += boost::json::serialize(kv.value());
  }
  out += '}';
  return out;
}

}  // namespace spool
