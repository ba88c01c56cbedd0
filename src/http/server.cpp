#include "http/server.hpp"

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

// One accepted connection; lives on one io thread.
struct Connection {
  explicit Connection(tcp::socket s)
      : stream(std::move(s)), watcher_exit(stream.get_executor()), watchdog(stream.get_executor()) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;     // bytes read and not yet parsed
  BodySource* source = nullptr;  // set while a streamed body is being sent
  bool stopping = false;
  bool client_gone = false;
  bool reading = false;   // waiting for a request
  bool watching = false;  // watch_client() should report the client going away
  bool watcher_running = false;
  asio::steady_timer watcher_exit;  // cancelled when watch_client() returns
  // Streamed bodies are written on the raw socket; a coarse watchdog enforces the write timeout
  // instead of a timer per write.
  asio::steady_timer watchdog;
  bool streaming = false;
  bool writing = false;
  std::chrono::steady_clock::time_point write_started;
};

// Closes `c` once a write has been pending for `timeout`, checking a few times per timeout.
// Its handler holds only the connection, never the server.
void arm_write_watchdog(const std::shared_ptr<Connection>& c, std::chrono::milliseconds timeout) {
  const auto period = std::clamp(timeout / 4, std::chrono::milliseconds(20), std::chrono::milliseconds(5000));
  c->watchdog.expires_after(period);
  c->watchdog.async_wait([c, timeout](boost::system::error_code ec) {
    if (ec || !c->streaming) return;
    if (c->writing && std::chrono::steady_clock::now() - c->write_started >= timeout) {
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
  asio::awaitable<void> session(std::shared_ptr<Connection> c);
  asio::awaitable<void> watch_client(std::shared_ptr<Connection> c);
  asio::awaitable<boost::system::error_code> write_raw(Connection& c, std::span<const asio::const_buffer> buffers);
  asio::awaitable<bool> write_response(Connection& c, Response& r, bool keep_alive);
  // Sends a streamed body; true when the connection may serve another request afterwards.
  asio::awaitable<bool> stream_body(std::shared_ptr<Connection> c, std::unique_ptr<BodySource> src);
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
    boost::system::error_code ignored;
    sock.set_option(tcp::no_delay(true), ignored);
    auto c = std::make_shared<Connection>(std::move(sock));
    {
      std::lock_guard lk(mu);
      if (shutting_down) continue;
      live.insert(c);
    }
    spawn_detached(c->stream.get_executor(), session(c), "http session",
                   [self = shared_from_this(), c](const std::string&) { self->close_connection(c); });
  }
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
  c->watcher_running = true;
  bool gone = false;
  while (c->watching && c->buffer.size() < kMaxWatchedBytes) {
    auto [ec, n] = co_await c->stream.socket().async_read_some(c->buffer.prepare(512), use_tuple);
    c->buffer.commit(n);
    if (ec) {
      gone = c->watching;  // not when stop_watching() cancelled the read
      break;
    }
  }
  c->watcher_running = false;
  c->watcher_exit.cancel();
  if (gone) {
    c->client_gone = true;
    if (c->source) c->source->abort(AbortReason::client_gone);
  }
}

asio::awaitable<boost::system::error_code> Server::Impl::write_raw(Connection& c,
                                                                   std::span<const asio::const_buffer> buffers) {
  c.writing = true;
  c.write_started = std::chrono::steady_clock::now();
  auto [ec, n] = co_await asio::async_write(c.stream.socket(), buffers, use_tuple);
  c.writing = false;
  co_return ec;
}

asio::awaitable<bool> Server::Impl::stream_body(std::shared_ptr<Connection> c, std::unique_ptr<BodySource> src) {
  c->source = src.get();
  if (c->stopping) src->abort(AbortReason::shutdown);
  c->watching = true;
  spawn_detached(c->stream.get_executor(), watch_client(c), "http client watch", [c](const std::string&) {
    boost::system::error_code ignored;
    c->stream.socket().close(ignored);  // the session's next write fails and it ends
  });
  c->streaming = true;
  arm_write_watchdog(c, opts.write_timeout);
  ResponseHead head = co_await src->head();
  if (!head.close) {
    // A body of known length: the connection may live on, so stop watching before writing.
    c->watching = false;
    boost::system::error_code ignored;
    c->stream.socket().cancel(ignored);
    while (c->watcher_running) {
      c->watcher_exit.expires_at(asio::steady_timer::time_point::max());
      co_await c->watcher_exit.async_wait(use_tuple);
    }
  }
  boost::system::error_code ec;
  if (!c->client_gone) {
    const std::string hb = head_bytes(head);
    const asio::const_buffer hbuf = asio::buffer(hb);
    ec = co_await write_raw(*c, {&hbuf, 1});
    while (!ec && !c->client_gone) {
      BodyChunk chunk = co_await src->next();
      if (!chunk.buffers.empty() && !c->client_gone) ec = co_await write_raw(*c, chunk.buffers);
      if (chunk.last) break;
    }
  }
  c->streaming = false;
  c->watchdog.cancel();
  c->source = nullptr;
  c->watching = false;
  co_return !head.close && !ec && !c->client_gone;
}

asio::awaitable<void> Server::Impl::session(std::shared_ptr<Connection> c) {
  beast::flat_buffer& buffer = c->buffer;
  for (;;) {
    // Optional so the parser's memory is gone while a long streamed response is sent.
    std::optional<bhttp::request_parser<bhttp::string_body>> parser(std::in_place);
    parser->header_limit(static_cast<std::uint32_t>(opts.header_limit));
    parser->body_limit(opts.body_limit);
    c->stream.expires_after(opts.read_timeout);
    c->reading = true;
    auto [ec, n] = co_await bhttp::async_read_header(c->stream, buffer, *parser, use_tuple);
    // Trailer fields of a chunked body are appended after these: they are not headers (RFC 9110 §6.5.1).
    std::size_t head_fields = 0;
    if (!ec) {
      head_fields = static_cast<std::size_t>(std::distance(parser->get().begin(), parser->get().end()));
      if (!parser->is_done()) {
        if (expects_continue(parser->get())) ec = co_await write_continue(*c);
        if (!ec) std::tie(ec, n) = co_await bhttp::async_read(c->stream, buffer, *parser, use_tuple);
      }
    }
    c->reading = false;
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
      if (pe && !c->stopping) {
        Response r = errors.protocol_error(*pe);
        co_await write_response(*c, r, false);
      }
      break;
    }
    if (c->stopping) break;
    auto& msg = parser->get();
    Request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    req.headers.reserve(head_fields);
    for (auto it = msg.begin(); head_fields > 0; ++it, --head_fields) {
      const auto& f = *it;
      std::string name(f.name_string());
      for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      req.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    req.body = std::move(msg.body());
    req.executor = c->stream.get_executor();
    const bool keep_alive = msg.keep_alive();
    parser.reset();
    Response resp = co_await handler.handle(std::move(req));
    if (resp.source) {
      buffer.shrink_to_fit();  // idle observers should cost little
      const bool reusable = co_await stream_body(c, std::move(resp.source));
      if (!reusable || !keep_alive || c->stopping) break;
      continue;
    }
    const bool ok = co_await write_response(*c, resp, keep_alive && !c->stopping);
    if (!ok || !keep_alive || c->stopping) break;
  }
  close_connection(c);
}

void Server::Impl::close_connection(const std::shared_ptr<Connection>& c) {
  boost::system::error_code ignored;
  c->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  c->stream.close();
  forget(c);
}

void Server::Impl::stop_connection(const std::shared_ptr<Connection>& c) {
  c->stopping = true;
  if (c->source) {
    c->source->abort(AbortReason::shutdown);
  } else if (c->reading) {
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
