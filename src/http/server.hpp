// The HTTP/1.1 server: accepts connections on several io threads, parses requests with
// Beast, hands them to a Handler, writes responses and streamed bodies.
#pragma once

#include "http/message.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace spool::http {

// Limits and deadlines of the HTTP layer.
struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::size_t header_limit = std::size_t{16} * 1024;       // request line + headers; past it: 431
  std::size_t body_limit = std::size_t{16} * 1024 * 1024;  // past it: 413
  std::chrono::milliseconds read_timeout{30000};   // a whole request (or keep-alive idle) must arrive within this
  std::chrono::milliseconds write_timeout{30000};  // a socket accepting nothing this long is dropped
  // After an answer sent before the request was read whole (413, 431, 400): what is drained
  // of the rest before closing, at most (nginx's lingering_close, lingering_time and
  // lingering_timeout).
  std::size_t linger_bytes = std::size_t{32} * 1024 * 1024;
  std::chrono::milliseconds linger_time{30000};
  std::chrono::milliseconds linger_idle{5000};  // the client sending nothing this long ends it
  int backlog = 4096;
};

// Transport-level failures the handler turns into responses (the edge owns error bodies).
enum class ProtocolError { bad_request, header_too_large, body_too_large };

// What the server asks of the application besides requests.
class ErrorResponder {
 public:
  virtual ~ErrorResponder() = default;
  // The response for a request the HTTP layer could not parse or accept.
  virtual Response protocol_error(ProtocolError e) = 0;
};

// Accepts on the first io_context, spreads connections over all of them round-robin.
class Server {
 public:
  Server(std::vector<boost::asio::io_context*> contexts, ServerOptions opts, Handler& handler, ErrorResponder& errors);
  ~Server();

  // Binds and listens; returns the bound port (useful with port 0). Throws on failure.
  std::uint16_t listen();

  // Starts accepting (call after listen()).
  void start();

  // Serves a socket connected elsewhere, on its own executor (tests: one end of a socket pair).
  void adopt(boost::asio::ip::tcp::socket sock);

  // Stops accepting, ends streamed responses cleanly and closes idle connections; calls
  // `done` (on an io thread) once no connection is left.
  void shutdown(std::function<void()> done);

  // Open connections right now.
  std::size_t connections() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace spool::http
