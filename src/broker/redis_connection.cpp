#include "broker/redis_connection.hpp"

#include <hiredis/hiredis.h>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/url/parse.hpp>

#include <array>
#include <charconv>
#include <deque>
#include <optional>

namespace spool {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Result<RedisEndpoint> RedisEndpoint::parse(std::string_view url) {
  auto bad = [&](const std::string& why) {
    return make_error(Errc::invalid_request, "redis URL '" + std::string(url) + "': " + why);
  };
  auto u = boost::urls::parse_uri(url);
  if (!u) return bad("not a URL (expected redis://[:password@]host[:port][/db])");
  if (u->scheme() != "redis") return bad("the scheme must be redis:// (TLS is not supported)");
  RedisEndpoint ep;
  if (!u->encoded_host().empty()) ep.host = u->host();
  if (ep.host.size() > 2 && ep.host.front() == '[') ep.host = ep.host.substr(1, ep.host.size() - 2);
  if (u->has_port()) {
    const auto port = u->port();
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc{} || p != port.data() + port.size() || value == 0 || value > 65535) return bad("bad port");
    ep.port = static_cast<std::uint16_t>(value);
  }
  if (u->has_userinfo()) {
    ep.username = u->user();
    ep.password = u->password();
  }
  std::string path = u->path();
  if (!path.empty() && path != "/") {
    const std::string_view db = std::string_view(path).substr(1);
    int value = -1;
    auto [p, ec] = std::from_chars(db.data(), db.data() + db.size(), value);
    if (ec != std::errc{} || p != db.data() + db.size() || value < 0) return bad("the path must be a database number");
    ep.db = value;
  }
  return ep;
}

std::string RedisEndpoint::where() const { return host + ":" + std::to_string(port); }

namespace {

using ReplyHandler = asio::any_completion_handler<void(Result<RedisValue>)>;

// A reply's recipient and the executor to run it on (Boost 1.81 cannot post to the executor an
// any_completion_handler carries, so it travels beside it).
struct Completion {
  asio::any_io_executor ex;
  ReplyHandler h;
};

RedisValue convert(const redisReply* r) {
  RedisValue v;
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      v.type = RedisValue::Type::integer;
      v.integer = r->integer;
      break;
    case REDIS_REPLY_STRING:
      v.type = RedisValue::Type::string;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      v.type = RedisValue::Type::status;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      v.type = RedisValue::Type::error;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      v.type = RedisValue::Type::array;
      v.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) v.elements.push_back(convert(r->element[i]));
      break;
    default:
      break;  // nil
  }
  return v;
}

// Error replies that mean "Redis cannot answer now", not "no such thing": the command fails as
// if the connection were down, so no caller ever reads them as a value (an absent key, say).
bool is_transient_error(const RedisValue& v) {
  if (!v.is_error()) return false;
  for (std::string_view prefix : {"LOADING", "BUSY ", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"}) {
    if (v.str.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

bool is_push(const RedisValue& v) {
  return v.is_array() && v.elements.size() >= 3 && v.elements[0].is_string() &&
         (v.elements[0].str == "message" || v.elements[0].str == "pmessage");
}

// Runs the handler on its own executor (the caller's) with the result.
void complete(Completion c, Result<RedisValue> r) {
  asio::post(c.ex, [h = std::move(c.h), r = std::move(r)]() mutable { std::move(h)(std::move(r)); });
}

}  // namespace

struct RedisConnection::Impl : std::enable_shared_from_this<Impl> {
  Impl(const asio::any_io_executor& ex, RedisEndpoint e, std::chrono::milliseconds t)
      : strand(asio::make_strand(ex)), endpoint(std::move(e)), connect_timeout(t), sock(strand) {}
  ~Impl() {
    if (reader) redisReaderFree(reader);
  }

  asio::strand<asio::any_io_executor> strand;
  RedisEndpoint endpoint;
  std::chrono::milliseconds connect_timeout;
  tcp::socket sock;
  redisReader* reader = nullptr;
  std::uint64_t generation = 0;  // bumped on every (re)connect and failure; stale callbacks ignore themselves
  bool up = false;               // on the strand
  std::atomic<bool> up_flag{false};
  bool writing = false;
  std::string out, writing_buf;
  std::deque<Completion> pending;  // replies owed, in order (pushed/popped only: no move-assignment)
  std::array<char, std::size_t{64} * 1024> rbuf{};
  PushHandler push;
  std::function<void(std::string)> lost;

  Error unavailable(const std::string& why) const {
    return make_error(Errc::broker_unavailable, "Redis at " + endpoint.where() + " is unavailable: " + why);
  }

  // On the strand.
  void enqueue(const std::vector<std::string>& args, Completion h) {
    if (!up) {
      complete(std::move(h), unavailable("not connected"));
      return;
    }
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    argv.reserve(args.size());
    lens.reserve(args.size());
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    char* cmd = nullptr;
    const long long n = redisFormatCommandArgv(&cmd, static_cast<int>(args.size()), argv.data(), lens.data());
    if (n < 0 || cmd == nullptr) {
      complete(std::move(h), make_error(Errc::internal, "redis: cannot format command"));
      return;
    }
    out.append(cmd, static_cast<std::size_t>(n));
    redisFreeCommand(cmd);
    pending.push_back(std::move(h));
    flush();
  }

  void flush() {
    if (writing || out.empty() || !up) return;
    writing = true;
    writing_buf.clear();
    writing_buf.swap(out);
    asio::async_write(sock, asio::buffer(writing_buf),
                      asio::bind_executor(strand, [self = shared_from_this(), gen = generation](
                                                      boost::system::error_code ec, std::size_t) {
                        self->writing = false;
                        if (gen != self->generation) return;
                        if (ec) {
                          self->fail("write failed: " + ec.message());
                          return;
                        }
                        self->flush();
                      }));
  }

  void read() {
    sock.async_read_some(asio::buffer(rbuf),
                         asio::bind_executor(strand, [self = shared_from_this(), gen = generation](
                                                         boost::system::error_code ec, std::size_t n) {
                           if (gen != self->generation) return;
                           if (ec) {
                             self->fail(ec == asio::error::eof ? "the server closed the connection" : ec.message());
                             return;
                           }
                           if (redisReaderFeed(self->reader, self->rbuf.data(), n) != REDIS_OK) {
                             self->fail("protocol error");
                             return;
                           }
                           for (;;) {
                             void* reply = nullptr;
                             if (redisReaderGetReply(self->reader, &reply) != REDIS_OK) {
                               self->fail("protocol error");
                               return;
                             }
                             if (reply == nullptr) break;
                             RedisValue v = convert(static_cast<redisReply*>(reply));
                             freeReplyObject(reply);
                             self->dispatch(std::move(v));
                             if (gen != self->generation) return;  // a handler closed the connection
                           }
                           self->read();
                         }));
  }

  void dispatch(RedisValue v) {
    if (push && is_push(v)) {
      push(std::move(v));
      return;
    }
    if (pending.empty()) return;  // nothing owed: ignore (never happens with a well-behaved server)
    Completion h(std::move(pending.front()));
    pending.pop_front();
    if (is_transient_error(v)) {
      complete(std::move(h), unavailable(v.str));
      return;
    }
    complete(std::move(h), std::move(v));
  }

  // Drops the connection and fails every pending command; a loss of a live connection is
  // reported to `lost` unless `notify` is false (deliberate closes). On the strand.
  void fail(const std::string& why, bool notify = true) {
    const bool was_up = up && notify;
    ++generation;
    up = false;
    up_flag = false;
    boost::system::error_code ignore;
    sock.close(ignore);
    out.clear();
    if (reader) redisReaderFree(reader);
    reader = redisReaderCreate();
    while (!pending.empty()) {
      Completion h(std::move(pending.front()));
      pending.pop_front();
      complete(std::move(h), unavailable(why));
    }
    if (was_up && lost) lost(why);
  }
};

std::shared_ptr<RedisConnection> RedisConnection::create(const asio::any_io_executor& ex, RedisEndpoint endpoint,
                                                         std::chrono::milliseconds connect_timeout) {
  auto impl = std::make_shared<Impl>(ex, std::move(endpoint), connect_timeout);
  impl->reader = redisReaderCreate();
  return std::shared_ptr<RedisConnection>(new RedisConnection(std::move(impl)));
}

RedisConnection::RedisConnection(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

RedisConnection::~RedisConnection() { close(); }

void RedisConnection::set_push_handler(PushHandler h) { impl_->push = std::move(h); }

void RedisConnection::set_lost_handler(std::function<void(std::string)> h) { impl_->lost = std::move(h); }

bool RedisConnection::connected() const { return impl_->up_flag.load(); }

void RedisConnection::close() {
  asio::post(impl_->strand, [impl = impl_] { impl->fail("connection closed", false); });
}

void RedisConnection::abandon() {
  std::deque<Completion> dropped;
  dropped.swap(impl_->pending);
}

asio::awaitable<Status> RedisConnection::connect() {
  auto impl = impl_;
  const auto caller = co_await asio::this_coro::executor;
  co_await asio::post(impl->strand, asio::use_awaitable);
  impl->fail("reconnecting", false);
  const std::uint64_t gen = impl->generation;

  asio::steady_timer deadline(impl->strand);
  deadline.expires_after(impl->connect_timeout);
  auto timed_out = std::make_shared<bool>(false);
  auto connecting = std::make_shared<bool>(true);
  deadline.async_wait([impl, timed_out, connecting](boost::system::error_code ec) {
    if (ec || !*connecting) return;
    *timed_out = true;
    boost::system::error_code ignore;
    impl->sock.close(ignore);
  });
  tcp::resolver resolver(impl->strand);
  std::string why;
  auto [rec, results] = co_await resolver.async_resolve(impl->endpoint.host, std::to_string(impl->endpoint.port),
                                                        asio::as_tuple(asio::use_awaitable));
  if (rec) {
    why = "cannot resolve " + impl->endpoint.host + ": " + rec.message();
  } else {
    auto [cec, ep] = co_await asio::async_connect(impl->sock, results, asio::as_tuple(asio::use_awaitable));
    if (cec) why = *timed_out ? "connect timed out" : cec.message();
  }
  *connecting = false;
  deadline.cancel();
  if (why.empty() && gen == impl->generation) {
    impl->sock.set_option(tcp::no_delay(true));
    impl->up = true;
    impl->up_flag = true;
    impl->read();
  } else if (why.empty()) {
    why = "connection replaced";
  }
  Status st = Ok{};
  if (!why.empty()) {
    impl->fail(why);
    st = impl->unavailable(why);
  } else {
    std::vector<std::vector<std::string>> hello;
    if (!impl->endpoint.password.empty()) {
      if (impl->endpoint.username.empty()) {
        hello.push_back({"AUTH", impl->endpoint.password});
      } else {
        hello.push_back({"AUTH", impl->endpoint.username, impl->endpoint.password});
      }
    }
    if (impl->endpoint.db != 0) hello.push_back({"SELECT", std::to_string(impl->endpoint.db)});
    if (!hello.empty()) {
      auto replies = co_await pipeline(std::move(hello));
      std::optional<std::string> refused;
      if (!replies) refused = replies.error().explanation;
      for (std::size_t i = 0; !refused && i < replies->size(); ++i) {
        if ((*replies)[i].is_error()) refused = (*replies)[i].str;
      }
      if (refused) {  // never left half set up: connected() stays false
        co_await asio::post(impl->strand, asio::use_awaitable);
        impl->fail(*refused, false);
        st = impl->unavailable(*refused);
      }
    }
  }
  co_await asio::post(caller, asio::use_awaitable);
  co_return st;
}

namespace {

// Queues one command on the connection's strand; the reply completes the handler.
struct InitiateCommand {
  std::shared_ptr<RedisConnection::Impl> impl;
  std::vector<std::string> args;
  template <class Handler>
  void operator()(Handler&& handler) {
    Completion c{asio::get_associated_executor(handler), ReplyHandler(std::forward<Handler>(handler))};
    auto strand = impl->strand;
    asio::post(strand, [impl = std::move(impl), args = std::move(args), c = std::move(c)]() mutable {
      impl->enqueue(args, std::move(c));
    });
  }
};

}  // namespace

// Not a coroutine itself (g++ 12 mishandles temporaries around co_await): it returns the
// awaitable operation directly.
asio::awaitable<Result<RedisValue>> RedisConnection::command(std::vector<std::string> args) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<RedisValue>)>(
      InitiateCommand{impl_, std::move(args)}, asio::use_awaitable);
}

asio::awaitable<Result<std::vector<RedisValue>>> RedisConnection::pipeline(
    std::vector<std::vector<std::string>> commands) {
  // Issue every command before awaiting the first reply: they share one write.
  auto impl = impl_;
  struct Gather {  // touched on the strand only
    std::vector<std::optional<Result<RedisValue>>> replies;
    std::size_t left = 0;
    std::optional<asio::any_completion_handler<void()>> done;
    asio::any_io_executor done_ex;
    std::vector<std::vector<std::string>> commands;
  };
  auto g = std::make_shared<Gather>();
  g->commands.swap(commands);
  g->replies.resize(g->commands.size());
  g->left = g->commands.size();
  if (g->left > 0) {
    // Built outside the co_await: g++ 12 destroys temporaries of a co_await operand twice.
    auto issue = [impl, g](auto handler) {
      g->done_ex = asio::get_associated_executor(handler);
      g->done.emplace(std::move(handler));
      asio::post(impl->strand, [impl, g] {
        auto commands = std::move(g->commands);
        for (std::size_t i = 0; i < commands.size(); ++i) {
          auto on_reply = [g, i](Result<RedisValue> r) {
            g->replies[i].emplace(std::move(r));
            if (--g->left == 0) {
              asio::any_completion_handler<void()> h(std::move(*g->done));
              g->done.reset();
              asio::post(g->done_ex, std::move(h));  // resumes the caller on its own executor
            }
          };
          // The per-command completions run on the strand.
          impl->enqueue(commands[i], Completion{impl->strand, ReplyHandler(std::move(on_reply))});
        }
      });
    };
    auto all_replied =
        asio::async_initiate<const asio::use_awaitable_t<>&, void()>(std::move(issue), asio::use_awaitable);
    co_await std::move(all_replied);
  }
  std::vector<RedisValue> out;
  out.reserve(g->replies.size());
  for (auto& r : g->replies) {
    if (!*r) co_return r->error();
    out.push_back(std::move(r->value()));
  }
  co_return out;
}

}  // namespace spool
