// Networking for the load client: a single-threaded Asio context, plain HTTP/1.1 over TCP
// sockets, and SSE observers whose bodies go through bench::SseParser as bytes arrive.
//
// Everything runs on one thread, so shared state needs no locks. Reads are reactor-style:
// wait until a socket is readable, then read it without blocking into one buffer shared by
// all connections and parse those bytes before the next suspension point. That keeps the
// client's memory per idle observer to a few hundred bytes, which matters with 10,000 of them.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "sse.hpp"
#include "util.hpp"

namespace bench {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using asio::awaitable;
using boost::system::error_code;
inline constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

class Signal;

// One benchmark run: the event loop, the server's address, and what is open.
struct Ctx {
  asio::io_context io{1};
  tcp::endpoint ep;
  std::string host;    // Host header value
  std::string prefix;  // spool route prefix ("" by default)
  bool nchan = false;
  std::string nchan_pub = "/pub/";
  std::string nchan_sub = "/sub/";
  std::string model = "default";
  std::unordered_set<tcp::socket*> sockets;  // every open socket, for aborts
  std::unordered_set<Signal*> signals;       // every waitable, woken on abort
  bool aborting = false;                     // no new connections; waits give up
  bool timed_out = false;                    // the watchdog fired
  asio::steady_timer watchdog{io};

  // Stops the run: closes every socket (pending operations complete with an error) and wakes
  // every waiter. Used by the watchdog.
  void abort_all();
  // Closes every open socket without stopping the run (ends idle observers on purpose).
  void close_sockets();
  // (Re)arms the watchdog: after `seconds`, abort_all() and mark the run timed out.
  void arm(double seconds);
  void disarm() { watchdog.cancel(); }
};

// Keeps a socket in Ctx::sockets while it exists.
class SockReg {
 public:
  SockReg(Ctx& c, tcp::socket* s) : c_(c), s_(s) { c_.sockets.insert(s_); }
  ~SockReg() { c_.sockets.erase(s_); }
  SockReg(const SockReg&) = delete;
  SockReg& operator=(const SockReg&) = delete;

 private:
  Ctx& c_;
  tcp::socket* s_;
};

// Wakes coroutines waiting on it: a timer that never expires, cancelled to wake waiters.
class Signal {
 public:
  explicit Signal(Ctx& c) : c_(c), t_(c.io, asio::steady_timer::time_point::max()) { c_.signals.insert(this); }
  ~Signal() { c_.signals.erase(this); }
  Signal(const Signal&) = delete;
  Signal& operator=(const Signal&) = delete;
  awaitable<void> wait() { (void)co_await t_.async_wait(nothrow); }
  void notify_one() { t_.cancel_one(); }
  void notify_all() { t_.cancel(); }

 private:
  Ctx& c_;
  asio::steady_timer t_;
};

// Counting semaphore; acquire() returns false when the run is aborting.
class Semaphore {
 public:
  Semaphore(Ctx& c, long n) : c_(c), avail_(n), sig_(c) {}
  awaitable<bool> acquire() {
    while (avail_ <= 0 && !c_.aborting) co_await sig_.wait();
    if (c_.aborting) co_return false;
    --avail_;
    co_return true;
  }
  void release() {
    ++avail_;
    sig_.notify_one();
  }

 private:
  Ctx& c_;
  long avail_;
  Signal sig_;
};

// Waits until done() was called n times. Not cut short by an abort: the coroutines that call
// done() always finish, and their state must outlive them.
class WaitGroup {
 public:
  WaitGroup(Ctx& c, long n) : left_(n), sig_(c) {}
  void done() {
    if (--left_ <= 0) sig_.notify_all();
  }
  long left() const { return left_; }
  awaitable<void> wait() {
    while (left_ > 0) co_await sig_.wait();
  }

 private:
  long left_;
  Signal sig_;
};

// Calls wg->done() exactly once: on fire() or at destruction.
class Once {
 public:
  explicit Once(WaitGroup* wg) : wg_(wg) {}
  ~Once() { fire(); }
  Once(const Once&) = delete;
  Once& operator=(const Once&) = delete;
  void fire() {
    if (wg_) wg_->done();
    wg_ = nullptr;
  }

 private:
  WaitGroup* wg_;
};

// Starts a coroutine on the run's context; an escaping exception ends io_context::run().
template <class Awaitable>
void spawn(Ctx& c, Awaitable&& a) {
  asio::co_spawn(c.io, std::forward<Awaitable>(a), [](const std::exception_ptr& e) {
    if (e) std::rethrow_exception(e);
  });
}

awaitable<void> sleep_ms(Ctx& c, double ms);
awaitable<void> sleep_until_ns(Ctx& c, std::int64_t t_ns);  // t in now_ns() time

// Result of a read: n == 0 without error means the peer closed. The bytes are in read_buffer().
struct ReadResult {
  error_code ec;
  std::size_t n = 0;
  std::int64_t received_ns = -1;  // when the kernel received the last bytes read (now_ns clock), if known
};
const char* read_buffer();
std::size_t read_buffer_size();
awaitable<ReadResult> read_some(tcp::socket& s, bool wait_first);

// Connects (TCP_NODELAY, non-blocking) to `ep` (default: the target, c.ep); returns an empty
// string or what went wrong.
awaitable<std::string> connect_socket(Ctx& c, tcp::socket& s, std::optional<tcp::endpoint> ep = std::nullopt);

struct HttpResponse {
  int status = 0;
  std::string body;
  std::string error;  // transport failure; empty when a response was read
  bool ok() const { return error.empty(); }
};

// One keep-alive HTTP/1.1 connection for request/response exchanges (no pipelining). A
// request on a connection the server closed while idle is retried once on a new connection.
class HttpClient {
 public:
  explicit HttpClient(Ctx& c) : c_(c), s_(c.io), reg_(c, &s_) {}
  awaitable<std::string> connect();
  // `extra_headers`: complete header lines, each ending in CRLF.
  awaitable<HttpResponse> request(std::string method, std::string target, std::string body,
                                  std::string extra_headers = {});
  void close();

 private:
  Ctx& c_;
  tcp::socket s_;
  SockReg reg_;
  bool connected_ = false;
  std::string out_, in_;
};

// What one SSE observer saw. Times are now_ns() values, -1 when it did not happen.
struct ObsResult {
  int status = 0;
  bool attached = false;    // a response head arrived
  bool got_stop = false;    // message_stop received
  bool got_error = false;   // an `error` event received
  bool closed = false;      // the response ended (server closed / final chunk) or we closed after stop
  bool late_close = false;  // the server kept the connection open after message_stop; we closed it
  bool failed = false;      // connect/HTTP/framing failure or non-200
  bool aborted = false;     // ended by the watchdog or an intentional close
  std::string error;
  std::uint64_t events = 0, deltas = 0, pings = 0, bytes = 0;
  std::int64_t t_begin = -1, t_headers = -1, t_first = -1, t_stop = -1, t_closed = -1;
  std::int64_t t_first_delta = -1;     // first content delta (time to first token)
  std::int64_t output_tokens = -1;     // from the reply's usage, when it reports one
  std::vector<std::int64_t> arrivals;  // content_block_delta arrival times, if recorded
  tcp::socket* sock = nullptr;         // while the observer runs
};

struct ObsSpec {
  std::string method = "GET";  // POST with `body` (JSON) for a reply streamed by the request itself
  std::string body;
  bool openai = false;                    // OpenAI chat-completion chunks instead of Anthropic events
  std::string target;                     // request target (path and query)
  std::optional<tcp::endpoint> endpoint;  // another server than the target (a second instance)
  std::string extra_headers;              // complete header lines, each ending in CRLF
  bool close_on_stop = false;             // close our side after message_stop/error (nchan never closes)
  bool record = false;                    // keep content_block_delta arrival times
  std::size_t reserve = 0;                // arrivals to reserve
};

// Opens one SSE stream and reads it to the end. `gate` (optional) is held from connect until
// the response head arrives, bounding the connections in the server's accept queue;
// `attached` (optional) is counted down once the head arrived or the attempt failed;
// `done` (optional) is counted down when the observer ends.
awaitable<void> observe(Ctx& c, const ObsSpec& spec, ObsResult& r, Semaphore* gate, WaitGroup* attached,
                        WaitGroup* done);

// Closes observers that received message_stop but whose connection is still open `grace_ms`
// later (marks them late_close), until `done` reaches zero; then counts `finished` down (the
// caller waits for that before `res` goes away).
awaitable<void> sweep_late_closers(Ctx& c, std::vector<ObsResult>& res, WaitGroup& done, double grace_ms,
                                   WaitGroup& finished);

}  // namespace bench
