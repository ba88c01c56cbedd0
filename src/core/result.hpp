// Protocol-agnostic errors and Result<T>: the domain speaks these; only api/http_error maps them to HTTP.
#pragma once

#include <boost/json/value.hpp>

#include <string>
#include <utility>
#include <variant>

namespace spool {

// What went wrong, independent of any transport.
enum class Errc {
  invalid_request,     // bad input: schema or rule violation
  not_found,           // the stream does not exist
  unauthorized,        // missing or wrong credentials
  forbidden,           // credentials are not the point: the request's Host or Origin is refused
  too_large,           // body over the limit
  conflict,            // idempotency key reused with a different body
  overloaded,          // a limit on active streams/observers is reached
  upstream,            // the engine's upstream failed
  broker_unavailable,  // the broker cannot be reached
  route_not_found,     // no such route
  method_not_allowed,  // route exists, method does not
  internal,            // anything else
};

// An error: its kind, a human explanation, and for schema failures a list of
// {"type","loc","msg"} objects that replaces the explanation in the body.
struct Error {
  Errc code = Errc::internal;
  std::string explanation;
  boost::json::value detail;  // null unless schema errors
};

inline Error make_error(Errc code, std::string explanation) { return Error{code, std::move(explanation), nullptr}; }

// Either a value or an Error.
template <class T>
class Result {
 public:
  Result() : v_(Error{Errc::internal, "no result", nullptr}) {}  // for containers and futures
  Result(T v) : v_(std::move(v)) {}                              // NOLINT(google-explicit-constructor)
  Result(Error e) : v_(std::move(e)) {}                          // NOLINT(google-explicit-constructor)
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result of an operation with no value.
struct Ok {};
using Status = Result<Ok>;

}  // namespace spool
