#include "http/server.hpp"

#include "core/signal.hpp"
#include "core/spawn.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <span>
#include <tuple>
#include <unordered_set>

namespace spool::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Where a connection is in its life. Keep-alive goes round reading → handling → responding (or
// streaming) → reading; every path ends in closed.
enum class Phase : std::uint8_t {
  reading,      // waiting for a request, or reading one
  handling,     // the handler is working on the request
  responding,   // a complete response is being written
  streaming,    // a streamed body is being written; the watcher notices the client leaving
  client_gone,  // the client closed during a streamed body: nothing more is written
  lingering,    // answered before the request was read whole: draining what the client still sends
  closed,       // the session is over
};

// The watcher of a streamed response (a read that notices the client leaving).
enum class Watch : std::uint8_t {
  off,       // not running
  on,        // running: a failed read means the client left
  stopping,  // asked to stop (its read was cancelled): a failed read means nothing
};

// One accepted connection; lives on one io thread.
struct Connection {
  explicit Connection(tcp::socket s)
      : stream(std::move(s)), watcher_done(stream.get_executor()), watchdog(stream.get_executor()) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;  // bytes read and not yet parsed
  Phase phase = Phase::reading;
  bool stop_requested = false;   // the server is shutting down: end after the current step
  BodySource* source = nullptr;  // while streaming
  Watch watch = Watch::off;
  Signal watcher_done;  // notified when the watcher returns
  // Streamed bodies are written on the raw socket; a coarse watchdog enforces the write timeout
  // instead of a timer per write.
  asio::steady_timer watchdog;
  std::optional<std::chrono::steady_clock::time_point> write_started;  // while a streamed write is pending
};

// Closes `c` once a write has been pending for `timeout`, checking a few times per timeout.
// Its handler holds only the connection, never the server.
void arm_write_watchdog(const std::shared_ptr<Connection>& c, std::chrono::milliseconds timeout) {
  const auto period = std::clamp(timeout / 4, std::chrono::milliseconds(20), std::chrono::milliseconds(5000));
  c->watchdog.expires_after(period);
  c->watchdog.async_wait([c, timeout](boost::system::error_code ec) {
    if (ec || c->phase != Phase::streaming) return;
    if (c->write_started && std::chrono::steady_clock::now() - *c->write_started >= timeout) {
      boost::system::error_code ignored;
      c->stream.socket().close(ignored);  // the stalled write fails; the observer may resume later
      return;
    }
    arm_write_watchdog(c, timeout);
  });
}

constexpr std::size_t kMaxWatchedBytes = std::size_t{64} * 1024;

// True when the client waits for "100 Continue" before it sends the body (RFC 9110 §10.1.1).
bool expects_continue(const bhttp::request<bhttp::string_body>& m) {
  return m.version() >= 11 && beast::iequals(m[bhttp::field::expect], "100-continue");
}

asio::awaitable<boost::system::error_code> write_continue(Connection& c) {
  static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  auto [ec, n] = co_await asio::async_write(c.stream.socket(), asio::buffer(kContinue), use_tuple);
  co_return ec;
}

std::string head_bytes(const ResponseHead& h) {
  std::string s = fmt::format("HTTP/1.1 {} {}\r\n", h.status,
                              std::string_view(bhttp::obsolete_reason(static_cast<bhttp::status>(h.status))));
  if (!h.content_type.empty()) s += fmt::format("Content-Type: {}\r\n", h.content_type);
  for (const auto& [k, v] : h.headers) s += fmt::format("{}: {}\r\n", k, v);
  s += h.close ? "Server: spool\r\nConnection: close\r\n\r\n" : "Server: spool\r\n\r\n";
  return s;
}

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(std::vector<asio::io_context*> ctxs, ServerOptions o, Handler& h, ErrorResponder& e)
      : contexts(std::move(ctxs)), opts(std::move(o)), handler(h), errors(e), acceptor(*contexts.front()) {}

  std::vector<asio::io_context*> contexts;
  ServerOptions opts;
  Handler& handler;
  ErrorResponder& errors;
  tcp::acceptor acceptor;
  std::size_t next_context = 0;

  mutable std::mutex mu;
  std::unordered_set<std::shared_ptr<Connection>> live;
  bool shutting_down = false;
  std::function<void()> on_drained;

  asio::awaitable<void> accept_loop();
  // Serves one connected socket (accepted, or handed over by adopt()).
  void serve(tcp::socket sock);
  // A request read off a connection, and whether its client keeps the connection open.
  struct Incoming {
    Request request;
    bool keep_alive = false;
  };
  // Reads the next request; nullopt when the connection is to close (the client left, a
  // timeout, or a malformed request already answered).
  asio::awaitable<std::optional<Incoming>> read_request(Connection& c);
  asio::awaitable<void> session(std::shared_ptr<Connection> c);
  // Closes as nginx's lingering_close does, after an answer sent before the request was read
  // whole: stops sending, then reads and drops what the client still sends (bounded in bytes
  // and time), so the client's write does not meet a reset before it reads the answer.
  asio::awaitable<void> linger(Connection& c);
  asio::awaitable<void> watch_client(std::shared_ptr<Connection> c);
  // Ends the watcher (cancels its read) and returns once it has returned.
  asio::awaitable<void> stop_watching(Connection& c);
  asio::awaitable<boost::system::error_code> write_raw(Connection& c, std::span<const asio::const_buffer> buffers);
  asio::awaitable<bool> write_response(Connection& c, Response& r, bool keep_alive);
  // Sends a streamed body; true when the connection may serve another request afterwards.
  asio::awaitable<bool> stream_body(std::shared_ptr<Connection> c, Response r);
  void stop_connection(const std::shared_ptr<Connection>& c);
  // Closes the socket and forgets the connection (a session's last step, however it ended).
  void close_connection(const std::shared_ptr<Connection>& c);
  void forget(const std::shared_ptr<Connection>& c);
  void spawn_accept_loop();
};

asio::awaitable<void> Server::Impl::accept_loop() {
  asio::steady_timer backoff(acceptor.get_executor());
  while (acceptor.is_open()) {
    asio::io_context& ctx = *contexts[next_context];
    next_context = (next_context + 1) % contexts.size();
    auto [ec, sock] = co_await acceptor.async_accept(ctx.get_executor(), use_tuple);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) break;
    if (ec) {
      spdlog::warn("accept failed: {}", ec.message());
      backoff.expires_after(std::chrono::milliseconds(50));  // e.g. out of file descriptors
      co_await backoff.async_wait(use_tuple);
      continue;
    }
    serve(std::move(sock));
  }
}

void Server::Impl::serve(tcp::socket sock) {
  boost::system::error_code ignored;
  sock.set_option(tcp::no_delay(true), ignored);
  auto c = std::make_shared<Connection>(std::move(sock));
  {
    std::lock_guard lk(mu);
    if (shutting_down) return;
    live.insert(c);
  }
  spawn_detached(c->stream.get_executor(), session(c), "http session",
                 [self = shared_from_this(), c](const std::string&) { self->close_connection(c); });
}

asio::awaitable<bool> Server::Impl::write_response(Connection& c, Response& r, bool keep_alive) {
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), 11};
  res.set(bhttp::field::server, "spool");
  if (!r.content_type.empty()) res.set(bhttp::field::content_type, r.content_type);
  for (const auto& [k, v] : r.headers) res.set(k, v);
  res.body() = std::move(r.body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  c.stream.expires_after(opts.write_timeout);
  auto [ec, n] = co_await bhttp::async_write(c.stream, res, use_tuple);
  co_return !ec;
}

asio::awaitable<void> Server::Impl::watch_client(std::shared_ptr<Connection> c) {
  // A streamed response does not read requests; this read notices when the client closes.
  // Bytes that arrive meanwhile (a pipelined request) are kept for the next parse.
  while (c->watch == Watch::on && c->buffer.size() < kMaxWatchedBytes) {
    auto [ec, n] = co_await c->stream.socket().async_read_some(c->buffer.prepare(512), use_tuple);
    c->buffer.commit(n);
    if (!ec) continue;
    if (c->watch == Watch::on && c->phase == Phase::streaming) {  // not when stop_watching() cancelled the read
      c->phase = Phase::client_gone;
      if (c->source) c->source->abort(AbortReason::client_gone);
    }
    break;
  }
  c->watch = Watch::off;
  c->watcher_done.notify();
}

asio::awaitable<void> Server::Impl::stop_watching(Connection& c) {
  if (c.watch == Watch::off) co_return;
  c.watch = Watch::stopping;
  boost::system::error_code ignored;
  c.stream.socket().cancel(ignored);
  while (c.watch != Watch::off) co_await c.watcher_done.wait();
}

asio::awaitable<boost::system::error_code> Server::Impl::write_raw(Connection& c,
                                                                   std::span<const asio::const_buffer> buffers) {
  c.write_started = std::chrono::steady_clock::now();
  auto [ec, n] = co_await asio::async_write(c.stream.socket(), buffers, use_tuple);
  c.write_started.reset();
  co_return ec;
}

asio::awaitable<bool> Server::Impl::stream_body(std::shared_ptr<Connection> c, Response r) {
  const std::unique_ptr<BodySource> src = std::move(r.source);
  c->source = src.get();
  c->phase = Phase::streaming;
  if (c->stop_requested) src->abort(AbortReason::shutdown);
  c->watch = Watch::on;
  spawn_detached(c->stream.get_executor(), watch_client(c), "http client watch", [c](const std::string&) {
    c->watch = Watch::off;
    c->watcher_done.notify();
    boost::system::error_code ignored;
    c->stream.socket().close(ignored);  // the session's next write fails and it ends
  });
  arm_write_watchdog(c, opts.write_timeout);
  ResponseHead head = co_await src->head();
  for (auto& h : r.headers) head.headers.push_back(std::move(h));  // the handler's own (request-id, CORS)
  // A body of known length: the connection may live on, so stop watching before writing.
  if (!head.close) co_await stop_watching(*c);
  boost::system::error_code ec;
  if (c->phase == Phase::streaming) {
    const std::string hb = head_bytes(head);
    const asio::const_buffer hbuf = asio::buffer(hb);
    ec = co_await write_raw(*c, {&hbuf, 1});
    while (!ec && c->phase == Phase::streaming) {
      BodyChunk chunk = co_await src->next();
      if (!chunk.buffers.empty() && c->phase == Phase::streaming) ec = co_await write_raw(*c, chunk.buffers);
      if (chunk.last) break;
    }
  }
  const bool reusable = !head.close && !ec && c->phase == Phase::streaming;
  c->watchdog.cancel();
  c->source = nullptr;
  if (c->watch == Watch::on) c->watch = Watch::stopping;  // the socket closes next: its read fails harmlessly
  c->phase = reusable ? Phase::reading : Phase::closed;
  co_return reusable;
}

asio::awaitable<std::optional<Server::Impl::Incoming>> Server::Impl::read_request(Connection& c) {
  // Optional so the parser's memory is gone while a long streamed response is sent.
  std::optional<bhttp::request_parser<bhttp::string_body>> parser(std::in_place);
  parser->header_limit(static_cast<std::uint32_t>(opts.header_limit));
  parser->body_limit(opts.body_limit);
  c.stream.expires_after(opts.read_timeout);
  auto [ec, n] = co_await bhttp::async_read_header(c.stream, c.buffer, *parser, use_tuple);
  // Trailer fields of a chunked body are appended after these: they are not headers (RFC 9110 §6.5.1).
  std::size_t head_fields = 0;
  if (!ec) {
    head_fields = static_cast<std::size_t>(std::distance(parser->get().begin(), parser->get().end()));
    if (!parser->is_done()) {
      if (expects_continue(parser->get())) ec = co_await write_continue(c);
      if (!ec) std::tie(ec, n) = co_await bhttp::async_read(c.stream, c.buffer, *parser, use_tuple);
    }
  }
  if (ec) {
    std::optional<ProtocolError> pe;
    if (ec == bhttp::error::body_limit) {
      pe = ProtocolError::body_too_large;
    } else if (ec == bhttp::error::header_limit) {
      pe = ProtocolError::header_too_large;
    } else if (ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category() &&
               ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
      pe = ProtocolError::bad_request;
    }
    if (pe && !c.stop_requested) {
      c.phase = Phase::responding;
      Response r = errors.protocol_error(*pe);
      co_await write_response(c, r, false);
      if (!c.stop_requested) co_await linger(c);
    }
    co_return std::nullopt;
  }
  auto& msg = parser->get();
  Incoming in;
  in.keep_alive = msg.keep_alive();
  Request& req = in.request;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  req.headers.reserve(head_fields);
  for (auto it = msg.begin(); head_fields > 0; ++it, --head_fields) {
    std::string name(it->name_string());
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    req.headers.emplace_back(std::move(name), std::string(it->value()));
  }
  req.body = std::move(msg.body());
  req.executor = c.stream.get_executor();
  co_return in;
}

asio::awaitable<void> Server::Impl::linger(Connection& c) {
  c.phase = Phase::lingering;
  boost::system::error_code ec;
  c.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  const auto deadline = std::chrono::steady_clock::now() + opts.linger_time;
  std::vector<char> sink(std::size_t{16} * 1024);
  std::size_t drained = 0;
  while (!ec && !c.stop_requested && drained < opts.linger_bytes) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) break;
    c.stream.expires_after(std::min<std::chrono::steady_clock::duration>(left, opts.linger_idle));
    std::size_t n = 0;
    std::tie(ec, n) = co_await c.stream.async_read_some(asio::buffer(sink), use_tuple);
    drained += n;
  }
}

asio::awaitable<void> Server::Impl::session(std::shared_ptr<Connection> c) {
  for (;;) {
    c->phase = Phase::reading;
    auto in = co_await read_request(*c);
    if (!in || c->stop_requested) break;
    c->phase = Phase::handling;
    Response resp = co_await handler.handle(std::move(in->request));
    bool reusable = false;
    if (resp.source) {
      c->buffer.shrink_to_fit();  // idle observers should cost little
      reusable = co_await stream_body(c, std::move(resp));
    } else {
      c->phase = Phase::responding;
      reusable = co_await write_response(*c, resp, in->keep_alive && !c->stop_requested);
    }
    if (!reusable || !in->keep_alive || c->stop_requested) break;
  }
  close_connection(c);
}

void Server::Impl::close_connection(const std::shared_ptr<Connection>& c) {
  c->phase = Phase::closed;
  boost::system::error_code ignored;
  c->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  c->stream.close();
  forget(c);
}

void Server::Impl::stop_connection(const std::shared_ptr<Connection>& c) {
  c->stop_requested = true;
  if (c->source) {
    c->source->abort(AbortReason::shutdown);
  } else if (c->phase == Phase::reading || c->phase == Phase::lingering) {
    c->stream.cancel();
  }
}

void Server::Impl::forget(const std::shared_ptr<Connection>& c) {
  std::function<void()> done;
  {
    std::lock_guard lk(mu);
    live.erase(c);
    if (shutting_down && live.empty() && on_drained) done = std::move(on_drained);
  }
  if (done) done();
}

Server::Server(std::vector<asio::io_context*> contexts, ServerOptions opts, Handler& handler, ErrorResponder& errors)
    : impl_(std::make_shared<Impl>(std::move(contexts), std::move(opts), handler, errors)) {}

Server::~Server() = default;

std::uint16_t Server::listen() {
  auto& a = impl_->acceptor;
  tcp::endpoint ep(asio::ip::make_address(impl_->opts.host), impl_->opts.port);
  a.open(ep.protocol());
  a.set_option(asio::socket_base::reuse_address(true));
  a.bind(ep);
  a.listen(impl_->opts.backlog);
  return a.local_endpoint().port();
}

void Server::Impl::spawn_accept_loop() {
  spawn_detached(acceptor.get_executor(), accept_loop(), "accept loop",
                 [self = shared_from_this()](const std::string&) {
                   if (self->acceptor.is_open()) self->spawn_accept_loop();  // keep accepting
                 });
}

void Server::start() { impl_->spawn_accept_loop(); }

void Server::adopt(tcp::socket sock) {
  auto ex = sock.get_executor();
  asio::post(ex, [impl = impl_, s = std::move(sock)]() mutable { impl->serve(std::move(s)); });
}

void Server::shutdown(std::function<void()> done) {
  auto impl = impl_;
  asio::post(impl->acceptor.get_executor(), [impl] {
    boost::system::error_code ignored;
    impl->acceptor.close(ignored);
  });
  std::vector<std::shared_ptr<Connection>> conns;
  {
    std::lock_guard lk(impl->mu);
    impl->shutting_down = true;
    conns.assign(impl->live.begin(), impl->live.end());
    if (conns.empty()) {
      asio::post(impl->acceptor.get_executor(), std::move(done));
      return;
    }
    impl->on_drained = std::move(done);
  }
  for (auto& c : conns) {
    asio::post(c->stream.get_executor(), [impl, c] { impl->stop_connection(c); });
  }
}

std::size_t Server::connections() const {
  std::lock_guard lk(impl_->mu);
  return impl_->live.size();
}

}  // namespace spool::http
