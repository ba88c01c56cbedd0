#include "broker/redis_broker.hpp"

#include "broker/memory_broker.hpp"
#include "core/error_body.hpp"
#include "core/ids.hpp"
#include "core/signal.hpp"
#include "core/spawn.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

// Commands are built into locals before co_await: g++ 12 mishandles temporaries (braced lists,
// argument objects) created inside a co_await expression.
namespace spool {
namespace asio = boost::asio;

namespace {

using Command = std::vector<std::string>;
// A flush() waiting for its stream's writes, and the executor to resume it on.
struct FlushWaiter {
  asio::any_io_executor ex;
  asio::any_completion_handler<void(Status)> h;
};

void resume(FlushWaiter w, Status st) {
  asio::post(w.ex, [h = std::move(w.h), st = std::move(st)]() mutable { std::move(h)(std::move(st)); });
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

SysTime from_ms(std::int64_t ms) { return SysTime(std::chrono::milliseconds(ms)); }

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::int64_t to_int(std::string_view s, std::int64_t fallback = 0) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc{} ? v : fallback;
}

std::optional<StreamStatus> parse_status(std::string_view s) {
  for (auto st : {StreamStatus::pending, StreamStatus::processing, StreamStatus::completed, StreamStatus::cancelled,
                  StreamStatus::error}) {
    if (to_string(st) == s) return st;
  }
  return std::nullopt;
}

bool is_terminal_event(std::string_view type) { return type == "message_stop" || type == "error"; }

bool is_noscript(const RedisValue& v) { return v.is_error() && v.str.rfind("NOSCRIPT", 0) == 0; }

// An error reply where data was expected: Redis could not answer, which never means "absent".
Error refused(const RedisValue& v, std::string_view what) {
  return make_error(Errc::broker_unavailable, "Redis refused " + std::string(what) + ": " + v.str);
}

// The first error reply among `replies`, as refused(); Ok when there is none.
Status first_refusal(const std::vector<RedisValue>& replies, std::string_view what) {
  for (const auto& v : replies) {
    if (v.is_error()) return refused(v, what);
  }
  return Ok{};
}

constexpr std::chrono::milliseconds kFirstBackoff{100}, kLongestBackoff{2000};

// Appends a batch for one stream, if this instance still owns it and it is not terminal.
// KEYS: meta, log, observers. ARGV: instance, now_ms, status ('' = unchanged), error_message, expire_ms
// (0 = keep), input_tokens ('' = unchanged), output_tokens, queue_position ('' = unchanged,
// '-' = none), then (position, type, data) triples. Positions already stored are skipped, so a
// batch retried after a lost reply is harmless. Returns the last position, -1 when the stream is
// gone or another instance owns it, -2 when it is already terminal (ended by someone else).
constexpr std::string_view kAppendScript = R"lua(
local inst = redis.call('HGET', KEYS[1], 'instance')
if inst ~= ARGV[1] then return -1 end
local st = redis.call('HGET', KEYS[1], 'status')
if st == 'completed' or st == 'cancelled' or st == 'error' then return -2 end
local last = tonumber(redis.call('HGET', KEYS[1], 'events') or '0')
for i = 9, #ARGV, 3 do
  local pos = tonumber(ARGV[i])
  if pos > last then
    redis.call('XADD', KEYS[2], '0-' .. pos, 'type', ARGV[i + 1], 'data', ARGV[i + 2])
    last = pos
  end
end
redis.call('HSET', KEYS[1], 'events', last)
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'input_tokens', ARGV[6], 'output_tokens', ARGV[7]) end
if ARGV[8] == '-' then redis.call('HDEL', KEYS[1], 'queue_position')
elseif ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'queue_position', ARGV[8]) end
if ARGV[3] ~= '' and ARGV[3] ~= st then
  redis.call('HSET', KEYS[1], 'status', ARGV[3], 'updated_at', ARGV[2])
  if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'error_message', ARGV[4]) end
  if ARGV[3] == 'completed' or ARGV[3] == 'cancelled' or ARGV[3] == 'error' then
    redis.call('HSET', KEYS[1], 'completed_at', ARGV[2])
    redis.call('HDEL', KEYS[1], 'queue_position')
    if tonumber(ARGV[5]) > 0 then
      redis.call('PEXPIRE', KEYS[1], ARGV[5])
      redis.call('PEXPIRE', KEYS[2], ARGV[5])
      redis.call('PEXPIRE', KEYS[3], ARGV[5])
    end
  end
end
return last
)lua";

// Creates a stream record unless the id is taken. KEYS: meta. ARGV: field/value pairs. Returns 1 or 0.
constexpr std::string_view kCreateScript = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
)lua";

// Ends a running stream whose owner's lease ran out. KEYS: running, meta, log, observers. ARGV: id, now_ms,
// error event JSON, expire_ms. Returns 1 when it ended the stream.
constexpr std::string_view kLostScript = R"lua(
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
local st = redis.call('HGET', KEYS[2], 'status')
if not st or st == 'completed' or st == 'cancelled' or st == 'error' then return 0 end
local last = tonumber(redis.call('HGET', KEYS[2], 'events') or '0') + 1
redis.call('XADD', KEYS[3], '0-' .. last, 'type', 'error', 'data', ARGV[3])
redis.call('HSET', KEYS[2], 'events', last, 'status', 'error', 'error_message', 'instance lost',
           'updated_at', ARGV[2], 'completed_at', ARGV[2], 'instance', '')
redis.call('HDEL', KEYS[2], 'queue_position')
if tonumber(ARGV[4]) > 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
end
return 1
)lua";

// Records a cancel request where the running instance will find it even if it misses the
// message, then publishes it. KEYS: meta. ARGV: channel, message. Returns 0 when the stream is gone.
constexpr std::string_view kCancelScript = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'cancel_requested', '1')
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
)lua";

// Sets one instance's count of open observers of a stream (0 removes it); the counts expire with
// the stream. KEYS: meta, observers. ARGV: instance, count.
constexpr std::string_view kObserversScript = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  return 0
end
if ARGV[2] == '0' then redis.call('HDEL', KEYS[2], ARGV[1]) else redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
)lua";

// Replaces an Idempotency-Key's binding if it still holds `expected` (its stream is gone).
// KEYS: key. ARGV: expected, new value, ttl_ms. Returns 1 when replaced.
constexpr std::string_view kRebindScript = R"lua(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
)lua";

// Removes a stream whose create got no reply (the connection failed after sending it), so the 503
// the client got stays true: only while it is still this instance's, pending and empty.
// KEYS: meta, log, observers, running, created, owned. ARGV: instance, id. Returns 1 when removed.
constexpr std::string_view kAbandonScript = R"lua(
if redis.call('HGET', KEYS[1], 'instance') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'events') or '0') > 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('ZREM', KEYS[5], ARGV[2])
redis.call('ZREM', KEYS[6], ARGV[2])
return 1
)lua";

// An Idempotency-Key's value in Redis: "<digest> <id>".
std::string encode_keyed(const KeyedJob& j) { return j.digest + ' ' + j.id; }
std::optional<KeyedJob> decode_keyed(std::string_view v) {
  const auto space = v.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  return KeyedJob{std::string(v.substr(space + 1)), std::string(v.substr(0, space))};
}

// A stream's record from its meta hash (HGETALL reply); nullopt when there is none.
std::optional<StreamInfo> parse_meta(const std::string& id, const RedisValue& r, std::string* owner = nullptr) {
  if (!r.is_array() || r.elements.empty()) return std::nullopt;
  std::map<std::string, std::string, std::less<>> f;
  for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2) f[r.elements[i].str] = r.elements[i + 1].str;
  auto get = [&](std::string_view k) -> std::string_view {
    auto it = f.find(k);
    return it == f.end() ? std::string_view{} : std::string_view(it->second);
  };
  StreamInfo info;
  info.id = id;
  info.status = parse_status(get("status")).value_or(StreamStatus::pending);
  info.created_at = from_ms(to_int(get("created_at")));
  info.updated_at = from_ms(to_int(get("updated_at")));
  if (!get("completed_at").empty()) info.completed_at = from_ms(to_int(get("completed_at")));
  if (f.count("error_message")) info.error_message = std::string(get("error_message"));
  info.message_count = static_cast<int>(to_int(get("message_count")));
  info.thinking_enabled = get("thinking") == "1";
  info.model = std::string(get("model"));
  info.events = static_cast<std::uint64_t>(to_int(get("events")));
  info.usage = Usage{to_int(get("input_tokens")), to_int(get("output_tokens"))};
  if (!get("queue_position").empty()) info.queue_position = static_cast<int>(to_int(get("queue_position")));
  if (owner != nullptr) *owner = std::string(get("owner"));
  return info;
}

// Observers other live instances reported: `counts` is HGETALL of a stream's observers hash,
// `live` the instances whose lease runs.
int remote_observers(const RedisValue& counts, const RedisValue& live, const std::string& self) {
  int n = 0;
  for (std::size_t i = 0; counts.is_array() && i + 1 < counts.elements.size(); i += 2) {
    const std::string& inst = counts.elements[i].str;
    if (inst == self) continue;
    const bool alive = live.is_array() && std::any_of(live.elements.begin(), live.elements.end(),
                                                      [&](const RedisValue& v) { return v.str == inst; });
    if (alive) n += static_cast<int>(to_int(counts.elements[i + 1].str));
  }
  return n;
}

// What a writer still owes Redis for one stream.
struct Outbox {
  std::vector<std::pair<std::uint64_t, NewEvent>> events;  // (position, event)
  std::optional<StreamStatus> status;
  std::optional<std::string> error_message;
  std::optional<Usage> usage;
  std::optional<std::optional<int>> queue_position;
  bool empty() const { return events.empty() && !status && !error_message && !usage && !queue_position; }
};

}  // namespace

struct RedisBroker::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::any_io_executor e, RedisBrokerOptions o)
      : ex(std::move(e)),
        opts(std::move(o)),
        mirror(ex, MemoryBrokerOptions{std::chrono::seconds(0), std::chrono::milliseconds(60000)}),
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

  asio::any_io_executor ex;
  RedisBrokerOptions opts;
  MemoryBroker mirror;  // local copies: streams run here and streams observed here
  std::shared_ptr<RedisConnection> cmd, reader, sub;
  Signal flush_wake, read_wake;            // there is something to write / to read
  Signal cmd_lost, reader_lost, sub_lost;  // that connection failed: reconnect it
  std::atomic<bool> stopping{false};

  // One stream this instance runs.
  struct Owned {
    std::shared_ptr<StreamWriter> mirror;  // the local copy's writer
    std::uint64_t position = 0;            // events published so far
    Outbox out;
    bool terminal = false;  // its terminal status is queued (or stored)
    std::deque<FlushWaiter> waiters;
  };
  // One stream another instance runs that has observers here.
  struct Watched {
    std::shared_ptr<StreamWriter> mirror;
    std::uint64_t position = 0;  // last event copied
    bool loaded = false;         // its log so far is copied; the reader takes over
    bool terminal = false;
    int idle_sweeps = 0;  // sweeps that found no observers
  };
  mutable std::mutex mu;
  std::unordered_map<std::string, Owned> owned;
  std::unordered_map<std::string, Watched> watched;
  std::function<void(const std::string&)> on_cancel;
  // Streams whose count of open cursors here (the mirror's) Redis has not seen yet.
  std::unordered_set<std::string> observed_dirty;
  std::string append_sha, lost_sha, create_sha, cancel_sha, observers_sha, rebind_sha, abandon_sha;
  std::vector<std::pair<std::string, std::string>> unanswered_creates;  // (id, owner) whose create got no reply
  std::atomic<bool> scripts_loaded{false};  // on the command connection now (false after a reconnect until loaded)
  std::string last_failure;                 // why the command connection is down (under mu), for /health
  std::atomic<std::int64_t> reader_client_id{-1};
  // When the command connection last came up (steady clock, ms): leases that ran out while this
  // instance could not see Redis are not swept until their owners had a lease period to renew.
  std::atomic<std::int64_t> cmd_up_since{0};
  std::unordered_map<std::string, std::int64_t> last_prune;  // index key → when it was last pruned (steady ms)

  std::string meta_key(std::string_view id) const { return opts.prefix + "{" + std::string(id) + "}:meta"; }
  std::string log_key(std::string_view id) const { return opts.prefix + "{" + std::string(id) + "}:log"; }
  std::string observers_key(std::string_view id) const { return opts.prefix + "{" + std::string(id) + "}:observers"; }
  std::string running_key() const { return opts.prefix + "running"; }
  std::string instances_key() const { return opts.prefix + "instances"; }
  std::string created_key() const { return opts.prefix + "created"; }
  // The ids of one owner's streams (by created_at; entries of expired or deleted streams linger until pruned).
  std::string owned_key(std::string_view owner) const { return opts.prefix + "owned:" + std::string(owner); }
  std::string idempotency_key(std::string_view key) const { return opts.prefix + "idempotency:" + std::string(key); }
  std::string control_channel() const { return opts.prefix + "control"; }
  std::string expire_ms() const { return std::to_string(opts.stream_expiration.count() * 1000); }
  // The id inside a log key.
  std::optional<std::string> id_of_log_key(std::string_view key) const {
    const auto open = key.find('{');
    const auto close = key.rfind("}:log");
    if (open == std::string_view::npos || close == std::string_view::npos || close < open) return std::nullopt;
    return std::string(key.substr(open + 1, close - open - 1));
  }
  static Error not_found(const std::string& id) {
    return make_error(Errc::not_found, "Stream with message_id " + id + " not found");
  }

  // Runs a background loop; one that ends by an exception is logged and started again a second later.
  void spawn_loop(const std::function<asio::awaitable<void>()>& make, const std::string& what) {
    auto again = [self = shared_from_this(), make, what](const std::string&) {
      if (self->stopping) return;
      auto t = std::make_shared<asio::steady_timer>(self->ex, std::chrono::seconds(1));
      t->async_wait([self, t, make, what](boost::system::error_code) {
        if (!self->stopping) self->spawn_loop(make, what);
      });
    };
    spawn_detached(ex, make(), what, std::move(again));
  }

  // Wakes the flusher; wake-ups before it runs coalesce into one.
  void kick_flush() { flush_wake.notify(); }
  // A cursor on `id` opened or closed here (after the mirror counted it).
  void observer_change(const std::string& id) {
    {
      std::lock_guard lk(mu);
      observed_dirty.insert(id);
    }
    kick_flush();
  }
  void kick_reader() {
    read_wake.notify();
    if (const auto client = reader_client_id.load(); client >= 0) {
      // A blocked XREAD does not see new streams: unblock it (it then re-reads the watch list).
      spawn_detached(ex, cmd->command(redis_args("CLIENT", "UNBLOCK", std::to_string(client))), "redis unblock");
    }
  }

  // Queues `f(outbox)` for stream `id` and wakes the flusher.
  template <class F>
  void queue(const std::string& id, F&& f) {
    {
      std::lock_guard lk(mu);
      auto it = owned.find(id);
      if (it == owned.end()) return;  // deleted or ended by someone else
      f(it->second);
    }
    kick_flush();
  }

  asio::awaitable<Status> load_scripts() {
    std::vector<Command> load;
    for (const auto script :
         {kAppendScript, kLostScript, kCreateScript, kCancelScript, kObserversScript, kRebindScript, kAbandonScript}) {
      load.push_back({"SCRIPT", "LOAD", std::string(script)});
    }
    auto r = co_await cmd->pipeline(std::move(load));
    if (!r) co_return r.error();
    for (const auto& v : *r) {
      if (!v.is_string()) co_return refused(v, "the broker's scripts");
    }
    scripts_loaded = true;
    std::lock_guard lk(mu);
    append_sha = (*r)[0].str;
    lost_sha = (*r)[1].str;
    create_sha = (*r)[2].str;
    cancel_sha = (*r)[3].str;
    observers_sha = (*r)[4].str;
    rebind_sha = (*r)[5].str;
    abandon_sha = (*r)[6].str;
    co_return Ok{};
  }

  // Removes the streams whose create got no reply (see kAbandonScript), before anything else is
  // served on a new connection: a client told 503 may start the same id again at once.
  asio::awaitable<Status> abandon_unanswered_creates() {
    std::vector<std::pair<std::string, std::string>> creates;
    std::vector<Command> cmds;
    {
      std::lock_guard lk(mu);
      creates.swap(unanswered_creates);
      for (const auto& [id, owner] : creates) {
        cmds.push_back({"EVALSHA", abandon_sha, "6", meta_key(id), log_key(id), observers_key(id), running_key(),
                        created_key(), owned_key(owner), opts.instance, id});
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

  // Sends `cmds` (which may run the broker's scripts); when Redis no longer has the scripts (it
  // restarted), loads them and sends the commands once more. Every command here must be safe to repeat.
  asio::awaitable<Result<std::vector<RedisValue>>> scripted(std::vector<Command> cmds) {
    auto again = cmds;
    auto r = co_await cmd->pipeline(std::move(cmds));
    if (!r || std::none_of(r->begin(), r->end(), is_noscript)) co_return r;
    scripts_loaded = false;
    auto loaded = co_await load_scripts();
    if (!loaded) co_return loaded.error();
    co_return co_await cmd->pipeline(std::move(again));
  }

  // (Re)connects the command connection and everything that depends on it. A connection that
  // cannot be set up (Redis still loading its data, say) is closed, so it is retried with backoff
  // and never used half set up.
  asio::awaitable<Status> connect_cmd() {
    scripts_loaded = false;
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

  asio::awaitable<Status> connect_cmd_once() {
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
          co_return make_error(
              Errc::broker_unavailable,
              "Redis at " + opts.endpoint.where() + " is older than 6; the redis broker needs Redis 6 or later");
        }
      }
    }
    auto loaded = co_await load_scripts();
    if (!loaded) co_return loaded;
    auto abandoned = co_await abandon_unanswered_creates();
    if (!abandoned) co_return abandoned;
    // Alive from now on (the lease loop renews it), so this instance's observers count at once.
    auto alive = redis_args("ZADD", instances_key(), std::to_string(now_ms() + opts.lease.count()), opts.instance);
    co_await cmd->command(std::move(alive));
    co_return Ok{};
  }

  asio::awaitable<Status> connect_reader() {
    auto st = co_await reader->connect();
    if (!st) co_return st;
    auto args = redis_args("CLIENT", "ID");
    auto id = co_await reader->command(std::move(args));
    if (!id) co_return id.error();
    reader_client_id = id->integer;
    co_return Ok{};
  }

  asio::awaitable<Status> connect_sub() {
    auto st = co_await sub->connect();
    if (!st) co_return st;
    auto args = redis_args("SUBSCRIBE", control_channel());
    auto r = co_await sub->command(std::move(args));
    if (!r) co_return r.error();
    // Cancels published while it was away were missed: they are also stored with the streams.
    spawn_detached(ex, check_cancels(), "redis cancel check");
    co_return Ok{};
  }

  // Cancels the streams this instance runs whose record says a cancel was requested.
  asio::awaitable<void> check_cancels() {
    auto self = shared_from_this();
    std::vector<std::string> ids;
    {
      std::lock_guard lk(mu);
      for (const auto& [id, o] : owned) {
        if (!o.terminal) ids.push_back(id);
      }
    }
    if (ids.empty() || !cmd->connected()) co_return;
    std::vector<Command> gets;
    gets.reserve(ids.size());
    for (const auto& id : ids) gets.push_back(redis_args("HGET", meta_key(id), "cancel_requested"));
    auto r = co_await cmd->pipeline(std::move(gets));
    if (!r) co_return;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if ((*r)[i].is_string() && (*r)[i].str == "1" && on_cancel) on_cancel(ids[i]);
    }
  }

  // Keeps `conn` connected: waits until it fails (`lost`), then reconnects with backoff.
  asio::awaitable<void> keep_connected(std::shared_ptr<RedisConnection> conn,
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

  // Waits `backoff` (after a failure while connected: Redis answers, but cannot serve yet), then
  // doubles it up to kLongestBackoff.
  asio::awaitable<void> back_off(std::chrono::milliseconds& backoff) {
    asio::steady_timer t(ex);
    t.expires_after(backoff);
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    backoff = std::min(backoff * 2, kLongestBackoff);
  }

  // Sends every owned stream's outbox to Redis, in pipelined batches, until stopped.
  asio::awaitable<void> flusher() {
    auto self = shared_from_this();
    std::vector<std::string> observers_sent;  // streams whose observer counts the last batch carried
    std::chrono::milliseconds backoff = kFirstBackoff;
    while (!stopping) {
      struct Taken {
        std::string id;
        std::size_t events = 0;
        bool status = false, error_message = false, usage = false, queue_position = false;
        bool terminal = false;
      };
      std::vector<Taken> taken;
      std::vector<Command> cmds;
      {
        std::lock_guard lk(mu);
        for (auto& [id, o] : owned) {
          if (o.out.empty()) continue;
          Taken t{id};
          Command c{"EVALSHA",   append_sha,        "3",           meta_key(id),
                    log_key(id), observers_key(id), opts.instance, std::to_string(now_ms())};
          c.push_back(o.out.status ? std::string(to_string(*o.out.status)) : "");
          c.push_back(o.out.error_message.value_or(""));
          c.push_back(expire_ms());
          c.push_back(o.out.usage ? std::to_string(o.out.usage->input_tokens) : "");
          c.push_back(o.out.usage ? std::to_string(o.out.usage->output_tokens) : "");
          if (!o.out.queue_position) {
            c.emplace_back("");
          } else {
            c.push_back(*o.out.queue_position ? std::to_string(**o.out.queue_position) : "-");
          }
          for (const auto& [pos, e] : o.out.events) {
            c.push_back(std::to_string(pos));
            c.push_back(e.type);
            c.push_back(e.json);
          }
          t.events = o.out.events.size();
          t.status = o.out.status.has_value();
          t.error_message = o.out.error_message.has_value();
          t.usage = o.out.usage.has_value();
          t.queue_position = o.out.queue_position.has_value();
          t.terminal = o.out.status && is_terminal(*o.out.status);
          taken.push_back(std::move(t));
          cmds.push_back(std::move(c));
          if (taken.back().terminal) cmds.push_back({"ZREM", running_key(), id});
        }
        if (cmd->connected()) {
          for (const auto& id : observed_dirty) {
            cmds.push_back({"EVALSHA", observers_sha, "2", meta_key(id), observers_key(id), opts.instance,
                            std::to_string(mirror.observers_of(id))});
          }
          observers_sent.assign(observed_dirty.begin(), observed_dirty.end());
          observed_dirty.clear();
        }
      }
      if (cmds.empty() || !cmd->connected()) {
        co_await flush_wake.wait();
        continue;
      }
      auto replies = co_await cmd->pipeline(std::move(cmds));
      if (!replies) {
        fail_waiters(replies.error());
        {
          std::lock_guard lk(mu);
          observed_dirty.insert(observers_sent.begin(), observers_sent.end());
        }
        if (backoff == kFirstBackoff) spdlog::warn("redis broker: writes failed: {}", replies.error().explanation);
        co_await back_off(backoff);  // kept: sent again once Redis answers
        continue;
      }
      backoff = kFirstBackoff;
      std::vector<std::string> ended_elsewhere;
      std::vector<std::pair<FlushWaiter, Status>> wake;
      struct Stored {
        std::string id;
        std::uint64_t last;
        bool terminal;
      };
      std::vector<Stored> stored;  // readable by the observers here from now on
      bool reload = false;
      std::size_t r = 0;  // the reply of the next taken stream's append; the observer counts' follow the last
      {
        std::lock_guard lk(mu);
        for (const auto& t : taken) {
          const RedisValue& v = (*replies)[r];
          r += t.terminal ? 2 : 1;
          auto it = owned.find(t.id);
          if (it == owned.end()) continue;
          Owned& o = it->second;
          if (v.is_error()) {
            if (is_noscript(v))
              reload = true;  // Redis restarted: load and resend
            else
              spdlog::error("redis broker: append to {} failed: {}", t.id, v.str);
            continue;
          }
          if (v.integer < 0) {  // deleted, or ended by another instance (lease lost): stop the job
            ended_elsewhere.push_back(t.id);
            for (auto& w : o.waiters) wake.emplace_back(std::move(w), Status{Ok{}});
            owned.erase(it);
            continue;
          }
          stored.push_back(Stored{t.id, static_cast<std::uint64_t>(v.integer), t.terminal});
          o.out.events.erase(o.out.events.begin(), o.out.events.begin() + static_cast<std::ptrdiff_t>(t.events));
          if (t.status) o.out.status.reset();
          if (t.error_message) o.out.error_message.reset();
          if (t.usage) o.out.usage.reset();
          if (t.queue_position) o.out.queue_position.reset();
          if (o.out.empty()) {
            for (auto& w : o.waiters) wake.emplace_back(std::move(w), Status{Ok{}});
            o.waiters.clear();
            if (o.terminal) {  // finished and stored: its local copy stays while observed
              Watched& w = watched[t.id];
              w.mirror = o.mirror;
              w.position = o.position;
              w.loaded = w.terminal = true;
              owned.erase(it);
            }
          }
        }
      }
      for (const auto& s : stored) mirror.make_visible(s.id, s.last, s.terminal);
      for (auto& [w, st] : wake) resume(std::move(w), std::move(st));
      for (const auto& id : ended_elsewhere) {
        if (on_cancel) on_cancel(id);
        // Its copy here holds events Redis never got: its observers end and resume from Redis.
        co_await mirror.remove(id);
      }
      reload = reload || std::any_of(replies->begin() + static_cast<std::ptrdiff_t>(r), replies->end(), is_noscript);
      if (reload) {
        {
          std::lock_guard lk(mu);
          observed_dirty.insert(observers_sent.begin(), observers_sent.end());
        }
        scripts_loaded = false;
        if (auto loaded = co_await load_scripts(); !loaded) co_await back_off(backoff);
        kick_flush();  // what is left is sent again
      }
    }
  }

  void fail_waiters(const Error& e) {
    std::vector<FlushWaiter> hs;
    {
      std::lock_guard lk(mu);
      for (auto& [id, o] : owned) {
        for (auto& w : o.waiters) hs.push_back(std::move(w));
        o.waiters.clear();
      }
    }
    for (auto& h : hs) resume(std::move(h), Status{e});
  }

  // Copies entries [(entry id, [field, value, ...])] of `id`'s log into its mirror.
  void apply_entries(const std::string& id, const std::vector<RedisValue>& entries) {
    std::vector<NewEvent> events;
    bool terminal = false;
    std::shared_ptr<StreamWriter> writer;
    {
      std::lock_guard lk(mu);
      auto it = watched.find(id);
      if (it == watched.end()) return;
      Watched& w = it->second;
      writer = w.mirror;
      for (const auto& e : entries) {
        if (!e.is_array() || e.elements.size() < 2) continue;
        const std::string& eid = e.elements[0].str;
        const auto dash = eid.find('-');
        const auto pos = static_cast<std::uint64_t>(to_int(std::string_view(eid).substr(dash + 1)));
        if (pos != w.position + 1) continue;  // already copied (or a gap, which the writer never makes)
        NewEvent ev;
        const auto& f = e.elements[1].elements;
        for (std::size_t i = 0; i + 1 < f.size(); i += 2) {
          if (f[i].str == "type") ev.type = f[i + 1].str;
          if (f[i].str == "data") ev.json = f[i + 1].str;
        }
        terminal = terminal || is_terminal_event(ev.type);
        events.push_back(std::move(ev));
        w.position = pos;
      }
      if (terminal) w.terminal = true;
    }
    if (events.empty()) return;
    // The mirror's status only tells its cursors when to end.
    const auto status = terminal ? std::optional<StreamStatus>(StreamStatus::completed) : std::nullopt;
    writer->publish(events, status);
  }

  // One blocking XREAD over every watched stream at a time, until stopped.
  asio::awaitable<void> reader_loop() {
    auto self = shared_from_this();
    std::chrono::milliseconds backoff = kFirstBackoff;
    while (!stopping) {
      Command c{"XREAD", "COUNT", "1000", "BLOCK", "5000", "STREAMS"};
      std::vector<std::string> ids;
      {
        std::lock_guard lk(mu);
        for (const auto& [id, w] : watched) {
          if (w.loaded && !w.terminal) ids.push_back(id);
        }
        for (const auto& id : ids) c.push_back(log_key(id));
        for (const auto& id : ids) c.push_back("0-" + std::to_string(watched.at(id).position));
      }
      if (ids.empty() || !reader->connected()) {
        co_await read_wake.wait();
        continue;
      }
      auto r = co_await reader->command(std::move(c));
      if (r && r->is_nil()) continue;  // unblocked or timed out
      if (!r || r->is_error()) {
        // Lost (the loop waits above until reconnected), or Redis cannot serve yet: retry later.
        const std::string why = r ? r->str : r.error().explanation;
        if (backoff == kFirstBackoff) spdlog::warn("redis broker: XREAD failed: {}", why);
        if (reader->connected()) co_await back_off(backoff);
        continue;
      }
      backoff = kFirstBackoff;
      for (const auto& s : r->elements) {
        if (!s.is_array() || s.elements.size() < 2) continue;
        if (auto id = id_of_log_key(s.elements[0].str)) apply_entries(*id, s.elements[1].elements);
      }
    }
  }

  // Renews this instance's leases and ends streams whose owner's lease ran out.
  asio::awaitable<void> lease_loop() {
    auto self = shared_from_this();
    asio::steady_timer t(ex);
    while (!stopping) {
      t.expires_after(std::max(opts.lease / 3, std::chrono::milliseconds(10)));
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      if (stopping || !cmd->connected()) continue;
      const std::int64_t now = now_ms();
      Command renew{"ZADD", running_key(), "XX"};  // XX: never re-adds a stream the flusher removed
      {
        std::lock_guard lk(mu);
        for (const auto& [id, o] : owned) {
          renew.push_back(std::to_string(now + opts.lease.count()));
          renew.push_back(id);
        }
      }
      if (renew.size() > 3) co_await cmd->command(std::move(renew));
      std::vector<Command> alive;
      alive.push_back(redis_args("ZADD", instances_key(), std::to_string(now + opts.lease.count()), opts.instance));
      alive.push_back(
          redis_args("ZREMRANGEBYSCORE", instances_key(), "-inf", std::to_string(now - std::int64_t{3600} * 1000)));
      co_await cmd->pipeline(std::move(alive));
      co_await check_cancels();
      // After an outage every lease looks expired: give their owners a lease period to renew.
      if (steady_ms() - cmd_up_since.load() < opts.lease.count()) continue;
      auto due_cmd = redis_args("ZRANGEBYSCORE", running_key(), "-inf", std::to_string(now), "LIMIT", "0", "100");
      auto due = co_await cmd->command(std::move(due_cmd));
      if (!due || !due->is_array() || due->elements.empty()) continue;
      std::vector<Command> ends;
      std::string sha;
      {
        std::lock_guard lk(mu);
        sha = lost_sha;
      }
      for (const auto& e : due->elements) {
        const std::string& id = e.str;
        const std::string error = boost::json::serialize(
            error_body(make_error(Errc::internal, "instance lost: the instance running this job stopped"), id));
        ends.push_back({"EVALSHA", sha, "4", running_key(), meta_key(id), log_key(id), observers_key(id), id,
                        std::to_string(now), error, expire_ms()});
      }
      auto r = co_await scripted(std::move(ends));
      if (r) {
        for (std::size_t i = 0; i < r->size(); ++i) {
          if ((*r)[i].integer == 1) spdlog::warn("redis broker: {} ended: instance lost", due->elements[i].str);
        }
      }
    }
  }

  // Drops mirrors of other instances' streams nobody here observes any more.
  asio::awaitable<void> mirror_sweep() {
    auto self = shared_from_this();
    asio::steady_timer t(ex);
    while (!stopping) {
      t.expires_after(std::chrono::seconds(1));
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      std::vector<std::string> following;
      {
        std::lock_guard lk(mu);
        for (const auto& [id, w] : watched) {
          if (w.loaded && !w.terminal) following.push_back(id);
        }
      }
      // A followed stream whose record vanished (deleted while this instance missed the
      // message, or lost with a Redis that kept no data) ends for its observers here.
      if (!following.empty() && cmd->connected()) {
        std::vector<Command> checks;
        checks.reserve(following.size());
        for (const auto& id : following) checks.push_back(redis_args("EXISTS", meta_key(id)));
        auto exists = co_await cmd->pipeline(std::move(checks));
        for (std::size_t i = 0; exists && i < following.size(); ++i) {
          if ((*exists)[i].is_error() || (*exists)[i].integer != 0) continue;
          {
            std::lock_guard lk(mu);
            watched.erase(following[i]);
          }
          co_await mirror.remove(following[i]);
        }
      }
      // Under the lock, so an open() either sees the copy (and its cursor keeps it) or not (and
      // makes a new one); one that checked just before finds it gone and makes a new one.
      std::lock_guard lk(mu);
      for (auto it = watched.begin(); it != watched.end();) {
        if (mirror.observers_of(it->first) > 0) {
          it->second.idle_sweeps = 0;
        } else if (++it->second.idle_sweeps >= 2 && mirror.remove_if_unobserved(it->first)) {
          it = watched.erase(it);
          continue;
        }
        ++it;
      }
    }
  }

  // Makes a local copy of another instance's stream (or a finished one of ours whose copy was
  // dropped): its log so far, then the reader follows it. not_found when Redis has no such stream.
  asio::awaitable<Status> load_copy(const std::string& id) {
    auto args = redis_args("HMGET", meta_key(id), "status", "model");
    auto meta = co_await cmd->command(std::move(args));
    if (!meta) co_return meta.error();
    if (meta->is_error()) co_return refused(*meta, "a read");
    if (!meta->is_array() || meta->elements.empty() || meta->elements[0].is_nil()) co_return not_found(id);
    std::shared_ptr<StreamWriter> writer;
    {
      StreamSpec copy{id, meta->elements[1].str, 0, false, ""};
      auto created = co_await mirror.create(std::move(copy));
      std::lock_guard lk(mu);
      if (owned.count(id) == 0 && watched.count(id) == 0 && created) {
        watched[id].mirror = *created;
        writer = *created;
      }
    }
    if (!writer) co_return Ok{};  // another open made the copy meanwhile
    auto range = redis_args("XRANGE", log_key(id), "-", "+");
    auto log = co_await cmd->command(std::move(range));
    if (log && log->is_error()) log = refused(*log, "a read");
    if (!log) {
      {
        std::lock_guard lk(mu);
        watched.erase(id);
      }
      co_await mirror.remove(id);
      co_return log.error();
    }
    apply_entries(id, log->elements);
    {
      std::lock_guard lk(mu);
      if (auto it = watched.find(id); it != watched.end()) it->second.loaded = true;
    }
    kick_reader();
    co_return Ok{};
  }

  // Drops the entries of streams that are gone (expired, deleted) from the index `key`, at most
  // once every 10 s per index: a caller at its limit must not make every start scan it.
  asio::awaitable<Status> prune(std::string key) {
    constexpr std::int64_t kEvery = 10000;
    constexpr std::size_t kSlice = 500;
    {
      std::lock_guard lk(mu);
      auto& last = last_prune[key];
      if (last != 0 && steady_ms() - last < kEvery) co_return Ok{};
      last = steady_ms();
    }
    for (std::size_t offset = 0;; offset += kSlice) {
      auto range = redis_args("ZRANGE", key, std::to_string(offset), std::to_string(offset + kSlice - 1));
      auto ids = co_await cmd->command(std::move(range));
      if (!ids) co_return ids.error();
      if (ids->is_error()) co_return refused(*ids, "a count");
      if (ids->elements.empty()) co_return Ok{};
      std::vector<Command> checks;
      for (const auto& e : ids->elements) checks.push_back(redis_args("EXISTS", meta_key(e.str)));
      auto exists = co_await cmd->pipeline(std::move(checks));
      if (!exists) co_return exists.error();
      Command gone{"ZREM", key};
      for (std::size_t i = 0; i < ids->elements.size(); ++i) {
        if (!(*exists)[i].is_error() && (*exists)[i].integer == 0) gone.push_back(ids->elements[i].str);
      }
      if (gone.size() > 2) {
        auto removed = co_await cmd->command(std::move(gone));
        if (!removed) co_return removed.error();
        offset -= std::min<std::size_t>(offset, static_cast<std::size_t>(removed->integer));
      }
      if (ids->elements.size() < kSlice) co_return Ok{};
    }
  }

  void on_control(const RedisValue& v) {
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
      spawn_detached(ex, mirror.remove(id), "redis local copy removal");
    }
  }
};

namespace {

class RedisWriter final : public StreamWriter {
 public:
  RedisWriter(std::shared_ptr<RedisBroker::Impl> b, std::string id, std::shared_ptr<StreamWriter> mirror)
      : b_(std::move(b)), id_(std::move(id)), mirror_(std::move(mirror)) {}

  std::uint64_t publish(std::span<const NewEvent> events, std::optional<StreamStatus> status,
                        std::optional<std::string> error_message) override {
    // Queued for Redis (and the flusher woken) before the local observers are woken: observers on
    // other instances have the longer way to go. The job calls this for one stream at a time.
    bool queued = false;  // false: deleted, or ended by another instance; nothing more is taken
    b_->queue(id_, [&](RedisBroker::Impl::Owned& o) {
      for (const auto& e : events) o.out.events.emplace_back(++o.position, e);
      if (status && !o.terminal) {
        o.out.status = status;
        if (error_message) o.out.error_message = error_message;
        o.terminal = is_terminal(*status);
      }
      queued = true;
    });
    if (queued) position_ = mirror_->publish(events, status, std::move(error_message));
    return position_;
  }

  void set_status(StreamStatus status, std::optional<std::string> error_message) override {
    publish({}, status, std::move(error_message));
  }

  void set_usage(Usage usage) override {
    mirror_->set_usage(usage);
    b_->queue(id_, [&](RedisBroker::Impl::Owned& o) { o.out.usage = usage; });
  }

  void set_queue_position(std::optional<int> position) override {
    mirror_->set_queue_position(position);
    b_->queue(id_, [&](RedisBroker::Impl::Owned& o) { o.out.queue_position = position; });
  }

 private:
  std::shared_ptr<RedisBroker::Impl> b_;
  std::string id_;
  std::shared_ptr<StreamWriter> mirror_;
  std::uint64_t position_ = 0;  // events published
};

// A cursor of the local copy, counted in this instance's observers of the stream in Redis.
class CountedCursor final : public Cursor {
 public:
  CountedCursor(std::shared_ptr<RedisBroker::Impl> b, std::string id, std::unique_ptr<Cursor> inner)
      : b_(std::move(b)), id_(std::move(id)), inner_(std::move(inner)) {
    b_->observer_change(id_);
  }
  ~CountedCursor() override {
    inner_.reset();
    b_->observer_change(id_);
  }
  CountedCursor(const CountedCursor&) = delete;
  CountedCursor& operator=(const CountedCursor&) = delete;

  asio::awaitable<ReadChunk> next() override { return inner_->next(); }
  void interrupt() override { inner_->interrupt(); }
  void abort() override { inner_->abort(); }
  bool exhausted_at_open() const override { return inner_->exhausted_at_open(); }

 private:
  std::shared_ptr<RedisBroker::Impl> b_;
  std::string id_;
  std::unique_ptr<Cursor> inner_;
};

}  // namespace

RedisBroker::RedisBroker(asio::any_io_executor ex, RedisBrokerOptions opts)
    : impl_(std::make_shared<Impl>(std::move(ex), std::move(opts))) {}

RedisBroker::~RedisBroker() {
  stop();
  // A blocked XREAD (or any command in flight) holds a background coroutine, which holds the
  // broker: with the executor no longer run, drop those completions so everything is freed.
  for (auto* c : {impl_->cmd.get(), impl_->reader.get(), impl_->sub.get()}) c->abandon();
}

const std::string& RedisBroker::instance() const { return impl_->opts.instance; }

asio::awaitable<Status> RedisBroker::start() {
  auto& b = *impl_;
  for (auto [conn, lost] : {std::pair{b.cmd.get(), &b.cmd_lost}, std::pair{b.reader.get(), &b.reader_lost},
                            std::pair{b.sub.get(), &b.sub_lost}}) {
    conn->set_lost_handler([lost, w = std::weak_ptr<Impl>(impl_)](const std::string&) {
      if (auto self = w.lock()) lost->notify();
    });
  }
  b.sub->set_push_handler([w = std::weak_ptr<Impl>(impl_)](const RedisValue& v) {
    if (auto self = w.lock()) self->on_control(v);
  });
  auto st = co_await b.connect_cmd();
  if (!st) co_return st;
  if (auto r = co_await b.connect_reader(); !r) co_return r;
  if (auto r = co_await b.connect_sub(); !r) co_return r;
  b.spawn_loop([&b] { return b.keep_connected(b.cmd, &Impl::connect_cmd, b.cmd_lost); }, "redis command connection");
  b.spawn_loop([&b] { return b.keep_connected(b.reader, &Impl::connect_reader, b.reader_lost); },
               "redis reader connection");
  b.spawn_loop([&b] { return b.keep_connected(b.sub, &Impl::connect_sub, b.sub_lost); }, "redis pub/sub connection");
  b.spawn_loop([&b] { return b.flusher(); }, "redis flusher");
  b.spawn_loop([&b] { return b.reader_loop(); }, "redis reader");
  b.spawn_loop([&b] { return b.lease_loop(); }, "redis lease");
  b.spawn_loop([&b] { return b.mirror_sweep(); }, "redis mirror sweep");
  co_return Ok{};
}

void RedisBroker::stop() {
  auto& b = *impl_;
  if (b.stopping.exchange(true)) return;
  b.mirror.stop();
  asio::post(b.ex, [self = impl_] {
    for (Signal* s : {&self->flush_wake, &self->read_wake, &self->cmd_lost, &self->reader_lost, &self->sub_lost}) {
      s->close();
    }
  });
  b.cmd->close();
  b.reader->close();
  b.sub->close();
}

asio::awaitable<Result<std::shared_ptr<StreamWriter>>> RedisBroker::create(StreamSpec spec) {
  auto& b = *impl_;
  const std::string now = std::to_string(now_ms());
  std::string sha;
  {
    std::lock_guard lk(b.mu);
    sha = b.create_sha;
  }
  std::vector<Command> cmds;
  cmds.push_back(redis_args("EVALSHA", sha, "1", b.meta_key(spec.id), "status", "pending", "instance", b.opts.instance,
                            "created_at", now, "updated_at", now, "model", spec.model, "message_count",
                            std::to_string(spec.message_count), "thinking", spec.thinking_enabled ? "1" : "0", "owner",
                            spec.owner, "events", "0", "input_tokens", "0", "output_tokens", "0"));
  cmds.push_back(redis_args("ZADD", b.running_key(), "NX", std::to_string(now_ms() + b.opts.lease.count()), spec.id));
  cmds.push_back(redis_args("ZADD", b.created_key(), now, spec.id));
  cmds.push_back(redis_args("ZADD", b.owned_key(spec.owner), now, spec.id));
  auto r = co_await b.scripted(std::move(cmds));
  if (!r) {  // it may have run before the connection failed: undone once Redis is back
    std::lock_guard lk(b.mu);
    b.unanswered_creates.emplace_back(spec.id, spec.owner);
    co_return r.error();
  }
  if (auto st = first_refusal(*r, "a create"); !st) co_return st.error();
  if ((*r)[0].integer != 1) co_return make_error(Errc::invalid_request, "Stream with this message_id already exists");
  const std::string id = spec.id;
  // A stale local copy (a stream of that id deleted meanwhile) makes way; out of `watched`
  // first, so the mirror sweep leaves the new copy alone.
  {
    std::lock_guard lk(b.mu);
    b.watched.erase(id);
  }
  co_await b.mirror.remove(id);
  // Its observers here read an event once it is in Redis, as observers anywhere else do: were this
  // instance to die, what they saw is what the others have.
  auto mirror = co_await b.mirror.create_held(std::move(spec));
  if (!mirror) co_return mirror.error();
  {
    std::lock_guard lk(b.mu);
    b.owned[id].mirror = *mirror;
  }
  co_return std::shared_ptr<StreamWriter>(std::make_shared<RedisWriter>(impl_, id, std::move(*mirror)));
}

asio::awaitable<Result<StreamInfo>> RedisBroker::info(std::string id) {
  auto& b = *impl_;
  std::vector<Command> cmds;
  cmds.push_back(redis_args("HGETALL", b.meta_key(id)));
  cmds.push_back(redis_args("HGETALL", b.observers_key(id)));
  cmds.push_back(redis_args("ZRANGEBYSCORE", b.instances_key(), std::to_string(now_ms()), "+inf"));
  auto replies = co_await b.cmd->pipeline(std::move(cmds));
  if (!replies) co_return replies.error();
  if (auto st = first_refusal(*replies, "a read"); !st) co_return st.error();
  auto parsed = parse_meta(id, (*replies)[0]);
  if (!parsed) co_return Impl::not_found(id);
  StreamInfo info = std::move(*parsed);
  // Observers here (exact, from the local copy), plus what every other live instance reported.
  info.observers = b.mirror.observers_of(id) + remote_observers((*replies)[1], (*replies)[2], b.opts.instance);
  co_return info;
}

asio::awaitable<Result<std::unique_ptr<Cursor>>> RedisBroker::open(std::string id, std::uint64_t after,
                                                                   asio::any_io_executor ex) {
  auto& b = *impl_;
  for (int attempt = 0;; ++attempt) {
    bool local = false;
    {
      std::lock_guard lk(b.mu);
      local = b.owned.count(id) > 0 || b.watched.count(id) > 0;
    }
    if (!local) {
      auto loaded = co_await b.load_copy(id);
      if (!loaded) co_return loaded.error();
    }
    auto cursor = co_await b.mirror.open(id, after, ex);
    if (cursor) {
      co_return std::unique_ptr<Cursor>(std::make_unique<CountedCursor>(impl_, std::move(id), std::move(*cursor)));
    }
    // The mirror sweep dropped an idle local copy just now: copy the stream again, once.
    if (attempt > 0 || cursor.error().code != Errc::not_found) co_return cursor.error();
  }
}

asio::awaitable<Status> RedisBroker::remove(std::string id) {
  auto& b = *impl_;
  std::vector<Command> cmds;
  cmds.push_back(redis_args("DEL", b.meta_key(id), b.log_key(id), b.observers_key(id)));
  cmds.push_back(redis_args("ZREM", b.running_key(), id));
  cmds.push_back(redis_args("PUBLISH", b.control_channel(), "delete " + id));
  cmds.push_back(redis_args("ZREM", b.created_key(), id));
  auto r = co_await b.cmd->pipeline(std::move(cmds));
  if (!r) co_return r.error();
  if (auto st = first_refusal(*r, "a delete"); !st) co_return st.error();
  {
    std::lock_guard lk(b.mu);
    b.owned.erase(id);
    b.watched.erase(id);
  }
  co_await b.mirror.remove(id);
  if ((*r)[0].integer == 0) co_return Impl::not_found(id);
  co_return Ok{};
}

asio::awaitable<Result<StreamPage>> RedisBroker::list(ListQuery q) {
  auto& b = *impl_;
  // Newest first from the index, a slice at a time; records fetched in one pipeline per slice.
  // Entries whose record expired or vanished are dropped from the index on the way.
  constexpr std::size_t kSlice = 200;
  constexpr std::size_t kMostScanned = 20000;  // per page: a filter that matches little stops here
  const std::string top =
      q.after ? std::to_string(
                    std::chrono::duration_cast<std::chrono::milliseconds>(q.after->first.time_since_epoch()).count())
              : std::string("+inf");
  StreamPage page;
  std::vector<StreamInfo> found;
  for (std::size_t offset = 0; offset < kMostScanned && found.size() <= q.limit; offset += kSlice) {
    auto range = redis_args("ZREVRANGEBYSCORE", b.created_key(), top, "-inf", "LIMIT", std::to_string(offset),
                            std::to_string(kSlice));
    auto ids = co_await b.cmd->command(std::move(range));
    if (!ids) co_return ids.error();
    if (ids->is_error()) co_return refused(*ids, "a list");
    if (!ids->is_array() || ids->elements.empty()) break;
    std::vector<Command> fetch;
    for (const auto& e : ids->elements) {
      fetch.push_back(redis_args("HGETALL", b.meta_key(e.str)));
      fetch.push_back(redis_args("HGETALL", b.observers_key(e.str)));
    }
    fetch.push_back(redis_args("ZRANGEBYSCORE", b.instances_key(), std::to_string(now_ms()), "+inf"));
    auto records = co_await b.cmd->pipeline(std::move(fetch));
    if (!records) co_return records.error();
    if (auto st = first_refusal(*records, "a list"); !st) co_return st.error();
    const RedisValue& live = records->back();
    std::vector<Command> stale;
    for (std::size_t i = 0; i < ids->elements.size(); ++i) {
      const std::string& id = ids->elements[i].str;
      std::string owner;
      auto info = parse_meta(id, (*records)[2 * i], &owner);
      if (!info) {
        stale.push_back(redis_args("ZREM", b.created_key(), id));
        continue;
      }
      if ((q.owner && owner != *q.owner) || !matches(q, *info)) continue;
      info->observers = b.mirror.observers_of(id) + remote_observers((*records)[2 * i + 1], live, b.opts.instance);
      found.push_back(std::move(*info));
    }
    if (!stale.empty()) co_await b.cmd->pipeline(std::move(stale));
    if (ids->elements.size() < kSlice) break;
  }
  // The index orders by the millisecond; ties (and the cursor's own millisecond) by id.
  std::sort(found.begin(), found.end(), lists_before);
  page.has_more = found.size() > q.limit;
  if (page.has_more) found.resize(q.limit);
  page.streams = std::move(found);
  co_return page;
}

asio::awaitable<Result<std::string>> RedisBroker::owner(std::string id) {
  auto& b = *impl_;
  auto args = redis_args("HMGET", b.meta_key(id), "status", "owner");
  auto r = co_await b.cmd->command(std::move(args));
  if (!r) co_return r.error();
  if (r->is_error()) co_return refused(*r, "a read");
  if (!r->is_array() || r->elements.size() < 2 || r->elements[0].is_nil()) co_return Impl::not_found(id);
  co_return r->elements[1].str;
}

asio::awaitable<Result<HeldStreams>> RedisBroker::held(std::string owner, HeldStreams limits) {
  auto& b = *impl_;
  const std::string owned = b.owned_key(owner);
  for (int pass = 0;; ++pass) {
    std::vector<Command> counts;
    counts.push_back(redis_args("ZCARD", b.created_key()));
    counts.push_back(redis_args("ZCARD", owned));
    auto r = co_await b.cmd->pipeline(std::move(counts));
    if (!r) co_return r.error();
    if (auto st = first_refusal(*r, "a count"); !st) co_return st.error();
    HeldStreams h{static_cast<std::size_t>((*r)[0].integer), static_cast<std::size_t>((*r)[1].integer)};
    const bool total_over = limits.total > 0 && h.total >= limits.total;
    const bool owner_over = limits.of_owner > 0 && h.of_owner >= limits.of_owner;
    if (pass > 0 || (!total_over && !owner_over)) co_return h;
    // At a limit by the indexes' count: some entries may be streams that expired meanwhile.
    if (total_over) {
      const std::string created = b.created_key();
      if (auto st = co_await b.prune(created); !st) co_return st.error();
    }
    if (owner_over) {
      if (auto st = co_await b.prune(owned); !st) co_return st.error();
    }
  }
}

namespace {

// Parks a flush() until its stream's outbox is stored (or resumes it at once when empty).
struct InitiateFlush {
  std::shared_ptr<RedisBroker::Impl> b;
  std::string id;
  template <class Handler>
  void operator()(Handler&& handler) {
    FlushWaiter w{asio::get_associated_executor(handler), std::forward<Handler>(handler)};
    if (!b->cmd->connected()) {  // kept for later, but nobody waits for Redis to come back
      bool pending = false;
      {
        std::lock_guard lk(b->mu);
        auto it = b->owned.find(id);
        pending = it != b->owned.end() && !it->second.out.empty();
      }
      if (pending) {
        resume(std::move(w), Status{make_error(Errc::broker_unavailable,
                                               "Redis at " + b->opts.endpoint.where() +
                                                   " is unavailable; the change is kept and written when it is back")});
        return;
      }
    }
    {
      std::lock_guard lk(b->mu);
      auto it = b->owned.find(id);
      if (it != b->owned.end() && !it->second.out.empty()) {
        it->second.waiters.push_back(std::move(w));
        b->kick_flush();
        return;
      }
    }
    resume(std::move(w), Status{Ok{}});
  }
};

}  // namespace

// Not a coroutine (g++ 12 mishandles temporaries around co_await): returns the operation.
asio::awaitable<Status> RedisBroker::flush(std::string id) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Status)>(InitiateFlush{impl_, std::move(id)},
                                                                            asio::use_awaitable);
}

asio::awaitable<Result<bool>> RedisBroker::request_cancel(std::string id) {
  auto& b = *impl_;
  std::string sha;
  {
    std::lock_guard lk(b.mu);
    sha = b.cancel_sha;
  }
  std::vector<Command> cmds;
  cmds.push_back(redis_args("EVALSHA", sha, "1", b.meta_key(id), b.control_channel(), "cancel " + id));
  auto r = co_await b.scripted(std::move(cmds));
  if (!r) co_return r.error();
  if (auto st = first_refusal(*r, "a cancel"); !st) co_return st.error();
  if (r->front().integer == 0) co_return Impl::not_found(id);
  co_return true;
}

asio::awaitable<Result<std::optional<KeyedJob>>> RedisBroker::find_key(std::string key) {
  auto& b = *impl_;
  auto get = redis_args("GET", b.idempotency_key(key));
  auto r = co_await b.cmd->command(std::move(get));
  if (!r) co_return r.error();
  if (r->is_error()) co_return refused(*r, "a read");
  auto held = r->is_string() ? decode_keyed(r->str) : std::nullopt;
  if (!held) co_return std::optional<KeyedJob>();
  auto exists = redis_args("EXISTS", b.meta_key(held->id));
  auto e = co_await b.cmd->command(std::move(exists));
  if (!e) co_return e.error();
  if (e->is_error()) co_return refused(*e, "a read");
  if (e->integer == 0) co_return std::optional<KeyedJob>();  // its stream is gone: the key is free
  co_return held;
}

asio::awaitable<Result<std::optional<KeyedJob>>> RedisBroker::claim_key(std::string key, KeyedJob job) {
  auto& b = *impl_;
  const std::string k = b.idempotency_key(key);
  const std::string value = encode_keyed(job);
  const std::string ttl = std::to_string(std::chrono::milliseconds(kIdempotencyWindow).count());
  for (int attempt = 0; attempt < 8; ++attempt) {
    auto set = redis_args("SET", k, value, "NX", "PX", ttl);
    auto r = co_await b.cmd->command(std::move(set));
    if (!r) co_return r.error();
    if (r->is_error()) co_return refused(*r, "an Idempotency-Key");
    if (r->is_string() && r->str == "OK") co_return std::optional<KeyedJob>();
    // Taken: by a stream that still exists (that one wins), or by one that is gone (rebind it).
    auto get = redis_args("GET", k);
    auto cur = co_await b.cmd->command(std::move(get));
    if (!cur) co_return cur.error();
    if (cur->is_error()) co_return refused(*cur, "an Idempotency-Key");
    if (!cur->is_string()) continue;  // expired meanwhile: try again
    auto held = decode_keyed(cur->str);
    if (held && held->id == job.id) co_return std::optional<KeyedJob>();
    if (held) {
      auto exists = redis_args("EXISTS", b.meta_key(held->id));
      auto e = co_await b.cmd->command(std::move(exists));
      if (!e) co_return e.error();
      if (e->is_error()) co_return refused(*e, "an Idempotency-Key");
      if (e->integer != 0) co_return held;
    }
    std::string sha;
    {
      std::lock_guard lk(b.mu);
      sha = b.rebind_sha;
    }
    std::vector<Command> rebind;
    rebind.push_back(redis_args("EVALSHA", sha, "1", k, cur->str, value, ttl));
    auto rb = co_await b.scripted(std::move(rebind));
    if (!rb) co_return rb.error();
    if (auto st = first_refusal(*rb, "an Idempotency-Key"); !st) co_return st.error();
    if (rb->front().integer == 1) co_return std::optional<KeyedJob>();
  }
  co_return make_error(Errc::broker_unavailable, "Could not bind the Idempotency-Key in Redis (too much contention)");
}

void RedisBroker::on_remote_cancel(const std::function<void(const std::string&)>& handler) {
  impl_->on_cancel = handler;
}

std::vector<std::pair<StreamStatus, std::size_t>> RedisBroker::counts() const { return impl_->mirror.counts(); }

std::size_t RedisBroker::observers() const { return impl_->mirror.observers(); }

int RedisBroker::local_observers(const std::string& id) const { return impl_->mirror.observers_of(id); }

std::optional<std::string> RedisBroker::unready_reason() const {
  auto& b = *impl_;
  if (b.cmd->connected() && b.scripts_loaded && b.reader->connected() && b.sub->connected()) return std::nullopt;
  std::lock_guard lk(b.mu);
  if (!b.last_failure.empty()) return b.last_failure;
  return "Redis at " + b.opts.endpoint.where() + " is unavailable";
}

}  // namespace spool
