#include "http/client.hpp"

#include "core/redact.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>

namespace spool::http {
namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

void ClientCancel::cancel() {
  std::lock_guard lock(mu_);
  if (cancelled_) return;
  cancelled_ = true;
  if (hook_) hook_();  // only posts; never blocks
}

bool ClientCancel::cancelled() const {
  std::lock_guard lock(mu_);
  return cancelled_;
}

bool ClientCancel::set_hook(std::function<void()> hook) {
  std::lock_guard lock(mu_);
  if (cancelled_ && hook) return false;
  hook_ = std::move(hook);
  return true;
}

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kReadBuffer = std::size_t{16} * 1024;
constexpr std::size_t kHeaderLimit = std::size_t{64} * 1024;

// The connection of one call and its single deadline. Lives on the call's executor; the watchdog
// and a cancel() hold it by shared_ptr/weak_ptr so it outlives their handlers.
struct Conn : std::enable_shared_from_this<Conn> {
  explicit Conn(const asio::any_io_executor& ex) : resolver(ex), socket(ex), timer(ex) {}
  tcp::resolver resolver;
  tcp::socket socket;
  asio::steady_timer timer;
  Clock::time_point deadline = Clock::time_point::max();
  std::string phase;   // what the deadline stands for, e.g. "idle timeout: no data for 60000 ms"
  std::string failed;  // set when the deadline passed or the call was cancelled
  bool done = false;

  // Stops everything in flight; pending operations complete with an error promptly.
  void abort(std::string why) {
    if (done || !failed.empty()) return;
    failed = std::move(why);
    resolver.cancel();
    boost::system::error_code ignored;
    socket.close(ignored);
    timer.cancel();
  }

  // Sets the deadline and what its passing means.
  void set_deadline(Clock::time_point when, std::string what) {
    phase = std::move(what);
    deadline = when;
    arm();
  }

  // Pushes the deadline later (the idle timeout after progress); no timer operation.
  void extend(Clock::time_point when) { deadline = std::max(deadline, when); }

  // (Re)starts the watchdog: it fires at the deadline, re-waits if the deadline moved later.
  void arm() {
    timer.expires_at(deadline);
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->done || !self->failed.empty()) return;
      if (self->deadline > Clock::now()) {
        self->arm();
        return;
      }
      self->abort(self->phase);
    });
  }

  void finish() {
    done = true;
    resolver.cancel();
    timer.cancel();
    boost::system::error_code ignored;
    socket.close(ignored);
  }
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

bool has_header(const ClientRequest& r, std::string_view name) {
  return std::any_of(r.headers.begin(), r.headers.end(), [&](const auto& h) { return lower(h.first) == name; });
}

bool clean(std::string_view s) { return s.find_first_of("\r\n") == std::string_view::npos; }

struct Target {
  bool tls = false;
  std::string host;         // for DNS / SNI / certificate check (no brackets)
  std::string host_header;  // Host header value
  std::string port;
  std::string target;  // path and query
  std::string where;   // "host:port" for messages
};

Result<Target> parse_target(const std::string& url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed)
    return make_error(Errc::invalid_request,
                      fmt::format("invalid upstream URL '{}': {}", redact_url(url), parsed.error().message()));
  const boost::urls::url_view u = *parsed;
  Target t;
  const std::string scheme = lower(u.scheme());
  if (scheme == "https") {
    t.tls = true;
  } else if (scheme != "http") {
    return make_error(Errc::invalid_request,
                      fmt::format("unsupported upstream URL scheme '{}' in '{}'", scheme, redact_url(url)));
  }
  if (u.host_type() == boost::urls::host_type::ipv6) {
    t.host = u.host_ipv6_address().to_string();
  } else {
    t.host = u.host();
  }
  if (t.host.empty())
    return make_error(Errc::invalid_request, fmt::format("upstream URL '{}' has no host", redact_url(url)));
  const bool ipv6 = u.host_type() == boost::urls::host_type::ipv6;
  const std::string bracketed = ipv6 ? "[" + t.host + "]" : t.host;
  t.port = u.has_port() && !u.port().empty() ? std::string(u.port()) : (t.tls ? "443" : "80");
  const bool default_port = t.port == (t.tls ? "443" : "80");
  t.host_header = default_port ? bracketed : bracketed + ":" + t.port;
  t.where = bracketed + ":" + t.port;
  t.target = std::string(u.encoded_path());
  if (t.target.empty()) t.target = "/";
  if (u.has_query()) t.target += "?" + std::string(u.encoded_query());
  if (!clean(t.host) || !clean(t.target)) return make_error(Errc::invalid_request, "upstream URL contains CR/LF");
  return t;
}

Result<std::string> request_bytes(const ClientRequest& r, const Target& t) {
  if (r.method.empty() || !clean(r.method) || r.method.find(' ') != std::string::npos) {
    return make_error(Errc::invalid_request, fmt::format("invalid HTTP method '{}'", r.method));
  }
  std::string s = fmt::format("{} {} HTTP/1.1\r\n", r.method, t.target);
  if (!has_header(r, "host")) s += fmt::format("Host: {}\r\n", t.host_header);
  const bool body_method = r.method == "POST" || r.method == "PUT" || r.method == "PATCH";
  if (!has_header(r, "content-length") && !has_header(r, "transfer-encoding") && (body_method || !r.body.empty())) {
    s += fmt::format("Content-Length: {}\r\n", r.body.size());
  }
  if (!has_header(r, "accept")) s += "Accept: */*\r\n";
  if (!has_header(r, "user-agent")) s += "User-Agent: spool\r\n";
  if (!has_header(r, "connection")) s += "Connection: close\r\n";
  for (const auto& [k, v] : r.headers) {
    if (k.empty() || !clean(k) || !clean(v) || k.find(':') != std::string::npos) {
      return make_error(Errc::invalid_request, fmt::format("invalid request header '{}'", k));
    }
    s += fmt::format("{}: {}\r\n", k, v);
  }
  s += "\r\n";
  s += r.body;
  return s;
}

// The process-wide TLS client context: system trust store (honours SSL_CERT_FILE/SSL_CERT_DIR).
ssl::context& tls_context() {
  static ssl::context ctx = [] {
    ssl::context c(ssl::context::tls_client);
    c.set_default_verify_paths();
    c.set_verify_mode(ssl::verify_peer);
    c.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3);
    return c;
  }();
  return ctx;
}

std::string ms(std::chrono::milliseconds d) { return fmt::format("{} ms", d.count()); }

// Explains a failed read/write, preferring the deadline/cancel reason.
std::string explain_io(const Conn& c, const boost::system::error_code& ec, bool have_head) {
  if (!c.failed.empty()) return c.failed;
  const char* when = have_head ? "before the response ended" : "before the response head arrived";
  if (ec == asio::error::eof || ec == bhttp::error::partial_message || ec == ssl::error::stream_truncated ||
      ec == bhttp::error::end_of_stream) {
    return fmt::format("connection closed {}", when);
  }
  if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe)
    return fmt::format("connection reset {}", when);
  if (ec.category() == bhttp::make_error_code(bhttp::error::bad_version).category()) {
    return fmt::format("malformed HTTP response: {}", ec.message());
  }
  return fmt::format("read failed {}: {}", when, ec.message());
}

// Sends the request and reads the response over an established (and, for TLS, handshaken) stream.
template <class Stream>
asio::awaitable<Status> exchange(Conn& c, Stream& stream, const ClientRequest& req, const Target& t,
                                 const std::string& bytes,
                                 const std::function<void(const ClientResponseHead&)>& on_head,
                                 const std::function<bool(std::string_view)>& on_data) {
  auto fail = [&](std::string what) -> Status {
    if (what == "cancelled") return make_error(Errc::upstream, what);
    return make_error(Errc::upstream, fmt::format("upstream {}: {}", t.where, what));
  };

  c.set_deadline(
      Clock::now() + req.first_byte_timeout,
      fmt::format("first-byte timeout: no response head within {} of sending the request", ms(req.first_byte_timeout)));
  auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(bytes), use_tuple);
  if (wec) {
    if (!c.failed.empty()) co_return fail(c.failed);
    co_return fail(fmt::format("sending the request failed: {}", wec.message()));
  }

  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.header_limit(kHeaderLimit);
  parser.body_limit(boost::none);
  if (req.method == "HEAD") parser.skip(true);

  auto [hec, hn] = co_await bhttp::async_read_header(stream, buffer, parser, use_tuple);
  if (hec) co_return fail(explain_io(c, hec, false));

  ClientResponseHead head;
  head.status = static_cast<int>(parser.get().result_int());
  for (const auto& f : parser.get()) head.headers.emplace_back(lower(f.name_string()), std::string(f.value()));
  if (on_head) on_head(head);
  if (!c.failed.empty()) co_return fail(c.failed);  // cancelled during on_head

  const auto idle_what = fmt::format("idle timeout: no data for {}", ms(req.idle_timeout));
  c.set_deadline(Clock::now() + req.idle_timeout, idle_what);

  std::array<char, kReadBuffer> buf;
  while (!parser.is_done()) {
    parser.get().body().data = buf.data();
    parser.get().body().size = buf.size();
    auto [ec, n] = co_await bhttp::async_read_some(stream, buffer, parser, use_tuple);
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec == ssl::error::stream_truncated && parser.need_eof() && c.failed.empty()) {
      // A TLS peer closing without close_notify ends an EOF-delimited body.
      boost::system::error_code eof_ec;
      parser.put_eof(eof_ec);
      ec = eof_ec;
    }
    const std::size_t got = buf.size() - parser.get().body().size;
    if (got > 0 && on_data) {
      if (!on_data(std::string_view(buf.data(), got))) co_return Ok{};
      if (!c.failed.empty()) co_return fail(c.failed);
    }
    if (ec) co_return fail(explain_io(c, ec, true));
    c.extend(Clock::now() + req.idle_timeout);
  }
  co_return Ok{};
}

asio::awaitable<Status> run(std::shared_ptr<Conn> c, const ClientRequest& req, const Target& t,
                            const std::string& bytes, const std::function<void(const ClientResponseHead&)>& on_head,
                            const std::function<bool(std::string_view)>& on_data) {
  auto fail = [&](std::string what) -> Status {
    if (what == "cancelled") return make_error(Errc::upstream, what);
    return make_error(Errc::upstream, fmt::format("upstream {}: {}", t.where, what));
  };
  const auto connect_what = fmt::format("connect timeout: no connection within {}", ms(req.connect_timeout));
  c->set_deadline(Clock::now() + req.connect_timeout, connect_what);

  auto [rec, results] = co_await c->resolver.async_resolve(t.host, t.port, use_tuple);
  if (!c->failed.empty()) co_return fail(c->failed);
  if (rec) co_return fail(fmt::format("could not resolve {}: {}", t.host, rec.message()));

  auto [cec, ep] = co_await asio::async_connect(c->socket, results, use_tuple);
  if (!c->failed.empty()) co_return fail(c->failed);
  if (cec == asio::error::connection_refused) co_return fail("connection refused");
  if (cec) co_return fail(fmt::format("could not connect: {}", cec.message()));
  boost::system::error_code ignored;
  c->socket.set_option(tcp::no_delay(true), ignored);

  if (!t.tls) co_return co_await exchange(*c, c->socket, req, t, bytes, on_head, on_data);

  ssl::stream<tcp::socket&> tls(c->socket, tls_context());
  const bool ip_literal = [&] {
    boost::system::error_code e;
    asio::ip::make_address(t.host, e);
    return !e;
  }();
  // SNI for names; OpenSSL's own certificate name (or IP) check, so failures say "hostname mismatch".
  SSL* native = tls.native_handle();
  X509_VERIFY_PARAM* param = SSL_get0_param(native);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  const bool named =
      ip_literal ? X509_VERIFY_PARAM_set1_ip_asc(param, t.host.c_str()) == 1
                 : SSL_set_tlsext_host_name(native, t.host.c_str()) == 1 && SSL_set1_host(native, t.host.c_str()) == 1;
  if (!named) co_return fail("TLS handshake failed: could not set the expected host name");
  auto [hec] = co_await tls.async_handshake(ssl::stream_base::client, use_tuple);
  if (!c->failed.empty()) co_return fail(c->failed);
  if (hec) {
    std::string why = hec.message();
    const long verify = SSL_get_verify_result(tls.native_handle());
    if (verify != X509_V_OK) why += fmt::format(" ({})", X509_verify_cert_error_string(verify));
    co_return fail(fmt::format("TLS handshake failed: {}", why));
  }
  co_return co_await exchange(*c, tls, req, t, bytes, on_head, on_data);
}

}  // namespace

asio::awaitable<Status> stream_request(ClientRequest req, std::function<void(const ClientResponseHead&)> on_head,
                                       std::function<bool(std::string_view)> on_data,
                                       std::shared_ptr<ClientCancel> cancel) {
  auto target = parse_target(req.url);
  if (!target) co_return target.error();
  auto bytes = request_bytes(req, *target);
  if (!bytes) co_return bytes.error();

  const auto ex = co_await asio::this_coro::executor;
  auto c = std::make_shared<Conn>(ex);
  if (cancel) {
    std::weak_ptr<Conn> weak = c;
    const bool installed = cancel->set_hook([ex, weak] {
      asio::post(ex, [weak] {
        if (auto conn = weak.lock()) conn->abort("cancelled");
      });
    });
    if (!installed) co_return make_error(Errc::upstream, "cancelled");
  }
  struct Cleanup {
    std::shared_ptr<Conn>& c;
    std::shared_ptr<ClientCancel>& cancel;
    ~Cleanup() {
      if (cancel) cancel->set_hook(nullptr);
      c->finish();
    }
  } cleanup{c, cancel};

  co_return co_await run(c, req, *target, *bytes, on_head, on_data);
}

}  // namespace spool::http
