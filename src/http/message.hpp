// Transport-neutral HTTP request/response types: what the HTTP layer hands to handlers and
// takes back. No Beast here; only src/http/server.cpp knows Beast.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spool::http {

// One parsed request. Header names are lowercase.
struct Request {
  std::string method;  // GET, POST, ...
  std::string target;  // as sent: path and query
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  boost::asio::any_io_executor executor;  // the connection's executor (for cursors, timers)

  // The value of header `name` (lowercase), or nullptr.
  const std::string* header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return &v;
    }
    return nullptr;
  }
};

// Status line and headers of a response whose body comes from a BodySource.
struct ResponseHead {
  int status = 200;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = true;  // the body ends with the connection; false when headers carry Content-Length
};

// A piece of a streamed body.
struct BodyChunk {
  std::span<const boost::asio::const_buffer> buffers;  // valid until the next call on the source
  bool last = false;                                   // close the connection after writing these
};

// Why a streamed response is being cut short.
enum class AbortReason { client_gone, shutdown };

// A body produced over time (SSE, or a reply that waits for a job). The connection drives it:
// head() once, then next() until last. Every call happens on the connection's executor.
class BodySource {
 public:
  virtual ~BodySource() = default;
  // The status and headers; may wait (a synchronous reply waits for its job).
  virtual boost::asio::awaitable<ResponseHead> head() = 0;
  // The next bytes to send.
  virtual boost::asio::awaitable<BodyChunk> next() = 0;
  // The client went away or the server is stopping: pending and later calls return promptly.
  virtual void abort(AbortReason why) = 0;
};

// A complete response, or a streamed one when `source` is set.
struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::unique_ptr<BodySource> source;
  std::size_t null_request_id_at = std::string::npos;  // a §5 body's `null` request_id, for the router to fill
};

// Handles every request of the server.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual boost::asio::awaitable<Response> handle(Request req) = 0;
};

}  // namespace spool::http
