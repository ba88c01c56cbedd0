#include "net.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include <algorithm>
#include <optional>

namespace bench {

namespace {
// One read buffer for every connection: a coroutine reads into it and parses the bytes before
// it suspends again, and everything runs on one thread.
char g_buf[256 * 1024];
// The non-negative integer right after the first `key` in `s`.
std::optional<std::int64_t> number_after(std::string_view s, std::string_view key) {
  auto at = s.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  std::int64_t n = 0;
  bool any = false;
  for (auto i = at + key.size(); i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, any = true) n = n * 10 + (s[i] - '0');
  return any ? std::optional<std::int64_t>(n) : std::nullopt;
}
}  // namespace

const char* read_buffer() { return g_buf; }
std::size_t read_buffer_size() { return sizeof g_buf; }

void Ctx::abort_all() {
  aborting = true;
  close_sockets();
  auto sigs = signals;
  for (Signal* s : sigs) s->notify_all();
}

void Ctx::close_sockets() {
  auto socks = sockets;  // closing does not unregister; the owners do that later
  for (tcp::socket* s : socks) {
    error_code ec;
    s->close(ec);
  }
}

void Ctx::arm(double seconds) {
  watchdog.expires_after(std::chrono::milliseconds(static_cast<long long>(seconds * 1000)));
  watchdog.async_wait([this](error_code ec) {
    if (ec) return;  // re-armed or disarmed
    timed_out = true;
    abort_all();
  });
}

awaitable<void> sleep_ms(Ctx& c, double ms) {
  asio::steady_timer t(c.io, std::chrono::microseconds(static_cast<long long>(ms * 1000)));
  (void)co_await t.async_wait(nothrow);
}

awaitable<void> sleep_until_ns(Ctx& c, std::int64_t t_ns) {
  std::int64_t wait = t_ns - now_ns();
  if (wait <= 0) co_return;
  asio::steady_timer t(c.io, std::chrono::nanoseconds(wait));
  (void)co_await t.async_wait(nothrow);
}

awaitable<ReadResult> read_some(tcp::socket& s, bool wait_first) {
  for (;;) {
    if (wait_first) {
      auto [ec] = co_await s.async_wait(tcp::socket::wait_read, nothrow);
      if (ec) co_return ReadResult{ec, 0};
    }
    // recvmsg for the kernel's receive timestamp (SO_TIMESTAMPNS, set at connect).
    iovec iov{g_buf, sizeof g_buf};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(s.native_handle(), &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        wait_first = true;
        continue;
      }
      co_return ReadResult{error_code(errno, asio::error::get_system_category()), 0};
    }
    ReadResult r{{}, static_cast<std::size_t>(n)};
    for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr; cm = CMSG_NXTHDR(&msg, cm)) {
      if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
        timespec ts{};
        std::memcpy(&ts, CMSG_DATA(cm), sizeof ts);
        r.received_ns = from_realtime_ns(static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec);
      }
    }
    co_return r;
  }
}

awaitable<std::string> connect_socket(Ctx& c, tcp::socket& s, std::optional<tcp::endpoint> ep) {
  if (c.aborting) co_return std::string("aborted");
  const tcp::endpoint to = ep.value_or(c.ep);
  auto [ec] = co_await s.async_connect(to, nothrow);
  if (ec) {
    error_code ignore;
    s.close(ignore);
    co_return "connect: " + ec.message();
  }
  error_code ignore;
  s.set_option(tcp::no_delay(true), ignore);
  s.non_blocking(true, ignore);
  const int on = 1;  // receive timestamps: arrivals are timed by the kernel, not by this busy thread
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
  co_return std::string();
}

// ---------------------------------------------------------------------------------------------
// HttpClient

awaitable<std::string> HttpClient::connect() {
  std::string err = co_await connect_socket(c_, s_);
  connected_ = err.empty();
  co_return err;
}

void HttpClient::close() {
  error_code ec;
  s_.close(ec);
  connected_ = false;
}

awaitable<HttpResponse> HttpClient::request(std::string method, std::string target, std::string body,
                                            std::string extra_headers) {
  HttpResponse r;
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool fresh = false;
    if (!connected_ || !s_.is_open()) {
      std::string err = co_await connect();
      if (!err.empty()) {
        r.error = err;
        co_return r;
      }
      fresh = true;
    }
    out_.clear();
    out_ += method;
    out_ += ' ';
    out_ += target;
    out_ += " HTTP/1.1\r\nHost: ";
    out_ += c_.host;
    out_ += "\r\n";
    if (!body.empty() || method == "POST" || method == "PUT") {
      out_ += "Content-Type: application/json\r\nContent-Length: ";
      out_ += std::to_string(body.size());
      out_ += "\r\n";
    }
    out_ += extra_headers;
    out_ += "\r\n";
    out_ += body;
    auto [wec, wn] = co_await asio::async_write(s_, asio::buffer(out_), nothrow);
    (void)wn;
    if (wec) {
      close();
      if (!fresh && !c_.aborting) continue;
      r.error = "write: " + wec.message();
      co_return r;
    }
    in_.clear();
    ResponseHead h;
    long hl = 0;
    bool retry = false;
    for (;;) {
      ReadResult rr = co_await read_some(s_, true);
      if (rr.ec || rr.n == 0) {
        close();
        if (in_.empty() && !fresh && !c_.aborting) {
          retry = true;
          break;
        }
        r.error = rr.ec ? "read: " + rr.ec.message() : std::string("connection closed before the response");
        co_return r;
      }
      in_.append(g_buf, rr.n);
      hl = parse_response_head(in_, h);
      if (hl < 0) {
        close();
        r.error = "malformed response head";
        co_return r;
      }
      if (hl > 0) break;
    }
    if (retry) continue;
    r.status = h.status;
    BodyReader br;
    br.start(h, method == "HEAD");
    auto sink = [&r](const char* p, std::size_t n) { r.body.append(p, n); };
    if (br.feed(in_.data() + hl, in_.size() - static_cast<std::size_t>(hl), sink) < 0) {
      close();
      r.error = "bad body framing";
      co_return r;
    }
    while (!br.done()) {
      ReadResult rr = co_await read_some(s_, true);
      if (rr.ec) {
        close();
        r.error = "read: " + rr.ec.message();
        co_return r;
      }
      if (rr.n == 0) {
        close();
        if (br.until_close()) break;
        r.error = "connection closed in the middle of the body";
        co_return r;
      }
      if (br.feed(g_buf, rr.n, sink) < 0) {
        close();
        r.error = "bad body framing";
        co_return r;
      }
    }
    if (h.close || br.until_close()) close();
    co_return r;
  }
  r.error = "connection lost";
  co_return r;
}

// ---------------------------------------------------------------------------------------------
// Observer

awaitable<void> observe(Ctx& c, const ObsSpec& spec, ObsResult& r, Semaphore* gate, WaitGroup* attached,
                        WaitGroup* done) {
  Once done_once(done);
  Once attached_once(attached);
  r.t_begin = now_ns();
  bool held = false;
  if (gate) {
    if (!co_await gate->acquire()) {
      r.failed = r.aborted = true;
      r.error = "aborted";
      co_return;
    }
    held = true;
  }
  auto release = [&] {
    if (held) gate->release();
    held = false;
  };

  tcp::socket s(c.io);
  SockReg reg(c, &s);
  r.sock = &s;
  struct ClearSock {
    ObsResult& r;
    ~ClearSock() { r.sock = nullptr; }
  } clear_sock{r};

  std::string err = co_await connect_socket(c, s, spec.endpoint);
  if (!err.empty()) {
    release();
    r.failed = true;
    r.aborted = c.aborting;
    r.error = err;
    co_return;
  }
  std::string req;
  req.reserve(256 + spec.target.size() + spec.extra_headers.size() + spec.body.size());
  req += spec.method;
  req += ' ';
  req += spec.target;
  req += " HTTP/1.1\r\nHost: ";
  req += c.host;
  req += "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n";
  if (!spec.body.empty()) {
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(spec.body.size()) + "\r\n";
  }
  req += spec.extra_headers;
  req += "\r\n";
  req += spec.body;
  auto [wec, wn] = co_await asio::async_write(s, asio::buffer(req), nothrow);
  (void)wn;
  if (wec) {
    release();
    r.failed = true;
    r.aborted = c.aborting;
    r.error = "write: " + wec.message();
    co_return;
  }

  // Response head.
  std::string head;
  ResponseHead h;
  long hl = 0;
  for (;;) {
    ReadResult rr = co_await read_some(s, true);
    if (rr.ec || rr.n == 0) {
      release();
      r.failed = true;
      r.aborted = c.aborting;
      r.error = rr.ec ? "read: " + rr.ec.message() : std::string("closed before the response head");
      co_return;
    }
    head.append(g_buf, rr.n);
    hl = parse_response_head(head, h);
    if (hl < 0) {
      release();
      r.failed = true;
      r.error = "malformed response head";
      co_return;
    }
    if (hl > 0) break;
  }
  std::int64_t t_now = now_ns();
  r.t_headers = t_now;
  r.status = h.status;
  r.attached = true;
  release();
  attached_once.fire();
  if (h.status != 200) {
    r.failed = true;
    r.error = "HTTP status " + std::to_string(h.status);
    co_return;
  }
  if (spec.record && spec.reserve) r.arrivals.reserve(spec.reserve);

  // Body: framing decoder -> SSE parser -> counters, all on the bytes just read.
  BodyReader body;
  body.start(h);
  SseParser sse;
  bool close_now = false;
  auto delta = [&] {
    ++r.deltas;
    if (r.t_first_delta < 0) r.t_first_delta = t_now;
    if (spec.record) r.arrivals.push_back(t_now);
  };
  auto on_event = [&](const SseEvent& e) {
    if (spec.openai) {  // data-only chunks; a bench needs no JSON parser for them
      ++r.events;
      if (r.t_first < 0) r.t_first = t_now;
      if (e.data == "[DONE]") {
        r.got_stop = true;
        r.t_stop = t_now;
      } else if (e.data.find(R"("content":")") != std::string_view::npos &&
                 e.data.find(R"("content":"")") == std::string_view::npos) {
        delta();
      } else if (auto n = number_after(e.data, R"("completion_tokens":)")) {
        r.output_tokens = *n;
      } else if (e.data.find(R"("error")") != std::string_view::npos) {
        r.got_error = true;
        r.t_stop = t_now;
      }
      return;
    }
    if (e.type == "ping") {
      ++r.pings;
      return;
    }
    ++r.events;
    if (r.t_first < 0) r.t_first = t_now;
    if (e.type == "content_block_delta") {
      delta();
    } else if (e.type == "message_delta") {
      if (auto n = number_after(e.data, R"("output_tokens":)")) r.output_tokens = *n;
    } else if (e.type == "message_stop") {
      r.got_stop = true;
      r.t_stop = t_now;
      if (spec.close_on_stop) close_now = true;
    } else if (e.type == "error") {
      r.got_error = true;
      r.t_stop = t_now;
      if (spec.close_on_stop) close_now = true;
    }
  };
  bool sse_ok = true;
  auto on_body = [&](const char* p, std::size_t n) {
    r.bytes += n;
    if (!sse.feed(p, n, on_event)) sse_ok = false;
  };
  if (static_cast<std::size_t>(hl) < head.size() &&
      body.feed(head.data() + hl, head.size() - static_cast<std::size_t>(hl), on_body) < 0) {
    r.failed = true;
    r.error = "bad body framing";
    co_return;
  }
  bool wait_first = true;
  while (!close_now && sse_ok) {
    if (body.done()) {  // final chunk (or full length) received: the response is over
      r.closed = true;
      r.t_closed = t_now;
      break;
    }
    ReadResult rr = co_await read_some(s, wait_first);
    t_now = rr.received_ns >= 0 ? rr.received_ns : now_ns();
    if (rr.ec) {
      if (r.late_close) {
        r.closed = true;
      } else {
        r.aborted = c.aborting || rr.ec == asio::error::operation_aborted || rr.ec == asio::error::bad_descriptor;
        if (!r.aborted) {
          r.failed = true;
          r.error = "read: " + rr.ec.message();
        }
      }
      break;
    }
    if (rr.n == 0) {  // the server closed the connection
      r.closed = true;
      r.t_closed = t_now;
      if (!body.until_close() && !body.done()) r.error = "connection closed in the middle of the body";
      break;
    }
    wait_first = rr.n < sizeof g_buf;  // a full buffer: more is probably waiting
    if (body.feed(g_buf, rr.n, on_body) < 0) {
      r.failed = true;
      r.error = "bad body framing";
      break;
    }
  }
  if (!sse_ok) {
    r.failed = true;
    r.error = "SSE line too long";
  }
  if (close_now) {
    r.closed = true;
    r.t_closed = t_now;
  }
  error_code ignore;
  s.close(ignore);
}

awaitable<void> sweep_late_closers(Ctx& c, std::vector<ObsResult>& res, WaitGroup& done, double grace_ms,
                                   WaitGroup& finished) {
  Once once(&finished);
  const std::int64_t grace = static_cast<std::int64_t>(grace_ms * 1e6);
  while (done.left() > 0) {
    co_await sleep_ms(c, 50);
    std::int64_t now = now_ns();
    for (ObsResult& r : res) {
      if (r.sock && r.got_stop && !r.closed && !r.late_close && now - r.t_stop > grace) {
        r.late_close = true;
        r.t_closed = now;
        error_code ec;
        r.sock->close(ec);
      }
    }
  }
}

}  // namespace bench
