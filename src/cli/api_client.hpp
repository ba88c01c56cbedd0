// Spool's routes (SPEC §1) as typed calls for the command-line client, over spool::http::stream_request.
#pragma once

#include "core/result.hpp"
#include "http/client.hpp"
#include "http/sse_parser.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace spool::cli {

// An answer with its whole body (for the SSE route: the body only when the status is not 200).
struct Reply {
  int status = 0;
  std::string body;
};

// Where the server is and how to authenticate.
struct Endpoint {
  std::string base_url;       // normalized: http(s)://host[:port][/prefix], no trailing slash
  std::string authorization;  // the whole Authorization header value; empty: none sent
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds answer_timeout{60000};  // request sent → response head (cancel waits for the engine)
  std::chrono::milliseconds stream_idle_timeout{60000};
};

// Calls a Spool server. Every call runs on the awaiting coroutine's executor, returns the Reply
// whatever its status, or the transport Error of stream_request() (Errc::upstream: could not reach
// or lost the server, or exactly "cancelled" after `cancel` fired). `cancel` may be null.
class ApiClient {
 public:
  using CancelPtr = std::shared_ptr<http::ClientCancel>;

  explicit ApiClient(Endpoint ep) : ep_(std::move(ep)) {}
  const Endpoint& endpoint() const { return ep_; }

  // POST /v1/messages/async[?message_id=ID] with a JSON body.
  boost::asio::awaitable<Result<Reply>> start(std::string body, std::string message_id, CancelPtr cancel);
  // GET /v1/messages/async/{id}/status
  boost::asio::awaitable<Result<Reply>> status(std::string id, CancelPtr cancel);
  // POST /v1/messages/async/{id}/cancel
  boost::asio::awaitable<Result<Reply>> cancel(std::string id, CancelPtr cancel);
  // DELETE /v1/messages/async/{id}/delete
  boost::asio::awaitable<Result<Reply>> remove(std::string id, CancelPtr cancel);
  // GET /v1/messages/async{query} (query from list_query()).
  boost::asio::awaitable<Result<Reply>> list(std::string query, CancelPtr cancel);
  // GET /v1/messages/async/{id}/stream, with Last-Event-ID: after unless it is empty. on_status gets
  // the response status as soon as the head arrives (so the caller knows the server was reached
  // even if the connection breaks later). On 200 every parsed event goes to on_event (returning
  // false closes the stream) and the Reply's body is empty; the call returns when the server
  // closes the stream.
  boost::asio::awaitable<Result<Reply>> stream(std::string id, std::string after, std::function<void(int)> on_status,
                                               std::function<bool(SseEvent&&)> on_event, CancelPtr cancel);

 private:
  boost::asio::awaitable<Result<Reply>> call(std::string method, std::string path, std::string body, CancelPtr cancel);
  http::ClientRequest request(std::string method, const std::string& path) const;
  Endpoint ep_;
};

}  // namespace spool::cli
