// Outbound streaming HTTP/1.1 client (http:// and https://) for engines that stream from upstream
// model servers. Beast-free interface; only src/http/client.cpp knows Beast and OpenSSL.
#pragma once

#include "core/result.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spool::http {

// One outbound request. Default headers (Host, Content-Length when there is a body or the method
// is POST/PUT/PATCH, Accept: */*, User-Agent: spool, Connection: close) are added unless `headers`
// names them (case-insensitive). The connection is always closed after the response.
struct ClientRequest {
  std::string method = "POST";
  std::string url;  // http:// or https:// (TLS, system CAs, SNI, host name check), host, optional port, path+query
  std::vector<std::pair<std::string, std::string>> headers;  // sent as given; no CR/LF allowed
  std::string body;
  std::chrono::milliseconds connect_timeout{10000};      // DNS + TCP + TLS handshake, together
  std::chrono::milliseconds first_byte_timeout{120000};  // start of sending the request → response head read
  std::chrono::milliseconds idle_timeout{60000};         // longest silence while reading the body
};

// Status and headers of the upstream response. Header names are lowercase, in arrival order.
struct ClientResponseHead {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;

  // The first value of header `name` (lowercase), or nullptr.
  const std::string* header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return &v;
    }
    return nullptr;
  }
};

// Cancels a running stream_request() from any thread: it then returns promptly with
// Errc::upstream and the explanation exactly "cancelled". Cancelling before the call starts makes
// the call return "cancelled" at once; cancelling after it returned does nothing. One per call;
// share it via shared_ptr between the stream and whoever may cancel.
class ClientCancel {
 public:
  // Idempotent, thread-safe, never blocks on I/O.
  void cancel();
  // True once cancel() was called.
  bool cancelled() const;

  // Used by stream_request(): installs (or with nullptr removes) the action cancel() runs.
  // Returns false, installing nothing, when already cancelled.
  bool set_hook(std::function<void()> hook);

 private:
  mutable std::mutex mu_;
  bool cancelled_ = false;
  std::function<void()> hook_;
};

// Sends `req` and streams the response on the awaiting coroutine's executor (which must not run
// handlers concurrently: a single-threaded io_context or a strand). Calls on_head once, then
// on_data with each piece of the decoded body (chunked transfer coding removed; the view is valid
// only during the call); on_data returning false ends the stream early, closes the connection and
// returns Ok. Returns Ok at the end of the body, whatever the status (a 401's head and body are
// delivered like a 200's). Otherwise an Error with Errc::upstream whose explanation starts with
// "upstream HOST:PORT: " and says what happened: could not resolve, connection refused, connect /
// first-byte / idle timeout (with the duration), TLS handshake failed, connection closed or reset
// before the response ended, malformed HTTP response; or exactly "cancelled" (see ClientCancel).
// A bad URL gives Errc::invalid_request. Exceptions thrown by the callbacks propagate.
// `cancel` may be null.
boost::asio::awaitable<Status> stream_request(ClientRequest req, std::function<void(const ClientResponseHead&)> on_head,
                                              std::function<bool(std::string_view)> on_data,
                                              std::shared_ptr<ClientCancel> cancel);

}  // namespace spool::http
