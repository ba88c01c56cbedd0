// The Redis broker's connections, kept up with backoff, and its control messages.
#include "broker/redis_broker_impl.hpp"

#include "broker/redis_records.hpp"
#include "core/ids.hpp"
#include "core/spawn.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

// Commands are built into locals before co_await: g++ 12 mishandles temporaries (braced lists,
// argument objects) created inside a co_await expression.
namespace spool {
namespace asio = boost::asio;

RedisBroker::Impl::Impl(asio::any_io_executor e, RedisBrokerOptions o)
    : ex(std::move(e)),
      opts(std::move(o)),
      keys{opts.prefix},
      scripts(keys),
      // Local copies expire with Redis's keys, and take their incarnations from Redis.
      mirror(ex, MemoryBrokerOptions{.stream_expiration = std::chrono::seconds(0),
                                     .sweep_interval = std::chrono::milliseconds(60000),
                                     .most_tombstones = 0}),
      cmd(RedisConnection::create(ex, opts.endpoint, opts.connect_timeout)),
      reader(RedisConnection::create(ex, opts.endpoint, opts.connect_timeout)),
      sub(RedisConnection::create(ex, opts.endpoint, opts.connect_timeout)),
      flush_wake(ex),
      read_wake(ex),
      cmd_lost(ex),
      reader_lost(ex),
      sub_lost(ex) {
  if (opts.instance.empty()) opts.instance = uuid4();
}

std::int64_t RedisBroker::Impl::now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t RedisBroker::Impl::steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Error RedisBroker::Impl::not_found(const std::string& id) {
  return make_error(Errc::not_found, "Stream with message_id " + id + " not found");
}

void RedisBroker::Impl::spawn_loop(const std::function<asio::awaitable<void>()>& make, const std::string& what) {
  auto again = [self = shared_from_this(), make, what](const std::string&) {
    if (self->stopping) return;
    auto t = std::make_shared<asio::steady_timer>(self->ex, std::chrono::seconds(1));
    t->async_wait([self, t, make, what](boost::system::error_code) {
      if (!self->stopping) self->spawn_loop(make, what);
    });
  };
  spawn_detached(ex, make(), what, std::move(again));
}

void RedisBroker::Impl::kick_reader() {
  read_wake.notify();
  if (const auto client = reader_client_id.load(); client >= 0) {
    // A blocked XREAD does not see new streams: unblock it (it then re-reads the watch list).
    spawn_detached(ex, cmd->command(redis_args("CLIENT", "UNBLOCK", std::to_string(client))), "redis unblock");
  }
}

void RedisBroker::Impl::observer_change(const std::string& id) {
  {
    std::lock_guard lk(mu);
    observed_dirty.insert(id);
  }
  kick_flush();
}

// Removes the streams whose create got no reply (see script::Abandon), before anything else is
// served on a new connection: a client told 503 may start the same id again at once.
asio::awaitable<Status> RedisBroker::Impl::abandon_unanswered_creates() {
  std::vector<std::pair<std::string, std::string>> creates;
  std::vector<RedisCommand> cmds;
  {
    std::lock_guard lk(mu);
    creates.swap(unanswered_creates);
    for (const auto& [id, owner] : creates) {
      cmds.push_back(scripts.command(script::Abandon{.id = id, .owner = owner, .instance = opts.instance}));
    }
  }
  if (cmds.empty()) co_return Ok{};
  auto r = co_await cmd->pipeline(std::move(cmds));
  Status st = r ? first_refusal(*r, "a clean-up") : Status{r.error()};
  if (!st) {
    std::lock_guard lk(mu);
    unanswered_creates.insert(unanswered_creates.end(), creates.begin(), creates.end());
  }
  co_return st;
}

asio::awaitable<Status> RedisBroker::Impl::connect_cmd() {
  scripts.forget();
  auto st = co_await connect_cmd_once();
  std::lock_guard lk(mu);
  if (st) {
    last_failure.clear();
  } else {
    last_failure = st.error().explanation;
    cmd->close();
  }
  co_return st;
}

asio::awaitable<Status> RedisBroker::Impl::connect_cmd_once() {
  auto st = co_await cmd->connect();
  if (!st) co_return st;
  cmd_up_since = steady_ms();
  auto args = redis_args("INFO", "server");
  auto ver = co_await cmd->command(std::move(args));
  if (ver && ver->is_string()) {
    const auto at = ver->str.find("redis_version:");
    if (at != std::string::npos) {
      const int major = static_cast<int>(to_int(std::string_view(ver->str).substr(at + 14, 1), 0));
      if (major > 0 && major < 6) {
        cmd->close();
        co_return make_error(Errc::broker_unavailable, "Redis at " + opts.endpoint.where() +
                                                           " is older than 6; the redis broker needs Redis 6 or later");
      }
    }
  }
  auto loaded = co_await scripts.load(*cmd);
  if (!loaded) co_return loaded;
  auto abandoned = co_await abandon_unanswered_creates();
  if (!abandoned) co_return abandoned;
  // Alive from now on (the lease loop renews it), so this instance's observers count at once.
  auto alive = redis_args("ZADD", keys.instances(), std::to_string(now_ms() + opts.lease.count()), opts.instance);
  co_await cmd->command(std::move(alive));
  co_return Ok{};
}

asio::awaitable<Status> RedisBroker::Impl::connect_reader() {
  auto st = co_await reader->connect();
  if (!st) co_return st;
  auto args = redis_args("CLIENT", "ID");
  auto id = co_await reader->command(std::move(args));
  if (!id) co_return id.error();
  reader_client_id = id->integer;
  co_return Ok{};
}

asio::awaitable<Status> RedisBroker::Impl::connect_sub() {
  auto st = co_await sub->connect();
  if (!st) co_return st;
  auto args = redis_args("SUBSCRIBE", keys.control());
  auto r = co_await sub->command(std::move(args));
  if (!r) co_return r.error();
  // Cancels published while it was away were missed: they are also stored with the streams.
  spawn_detached(ex, check_cancels(), "redis cancel check");
  co_return Ok{};
}

asio::awaitable<void> RedisBroker::Impl::keep_connected(std::shared_ptr<RedisConnection> conn,
                                                        asio::awaitable<Status> (Impl::*connect)(), Signal& lost) {
  auto self = shared_from_this();
  std::chrono::milliseconds backoff = kFirstBackoff;
  while (!stopping) {
    if (conn->connected()) {
      backoff = kFirstBackoff;
      co_await lost.wait();
      continue;
    }
    auto st = co_await (this->*connect)();
    if (st) {
      spdlog::info("redis broker: connected to {}", opts.endpoint.where());
      kick_flush();
      kick_reader();
      continue;
    }
    spdlog::warn("redis broker: {}; retrying in {} ms", st.error().explanation, backoff.count());
    co_await back_off(backoff);
  }
}

// After a failure while connected, Redis answers but cannot serve yet.
asio::awaitable<void> RedisBroker::Impl::back_off(std::chrono::milliseconds& backoff) {
  asio::steady_timer t(ex);
  t.expires_after(backoff);
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  backoff = std::min(backoff * 2, kLongestBackoff);
}

void RedisBroker::Impl::on_control(const RedisValue& v) {
  const std::string& msg = v.elements.back().str;
  const auto space = msg.find(' ');
  if (space == std::string::npos) return;
  const std::string verb = msg.substr(0, space);
  const std::string id = msg.substr(space + 1);
  bool mine = false;
  {
    std::lock_guard lk(mu);
    mine = owned.count(id) > 0;
    if (verb == "delete") {
      owned.erase(id);
      watched.erase(id);
    }
  }
  if (mine && on_cancel) on_cancel(id);
  if (verb == "delete") {
    spawn_detached(ex, mirror.remove(id, Removal::forget), "redis local copy removal");
  }
}

}  // namespace spool
