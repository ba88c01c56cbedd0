// The Redis broker's public operations; its background work is in the files redis_broker_impl.hpp lists.
#include "broker/redis_broker.hpp"

#include "broker/redis_broker_impl.hpp"
#include "broker/redis_records.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

// Commands are built into locals before co_await: g++ 12 mishandles temporaries (braced lists,
// argument objects) created inside a co_await expression.
namespace spool {
namespace asio = boost::asio;

namespace {

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
  // A blocked XREAD (or any command in flight) or a wait on a signal holds a background
  // coroutine, which holds the broker: with the executor perhaps never run again (stop()'s posted
  // close with it), drop those completions and close the signals here, so everything is freed.
  for (auto* c : {impl_->cmd.get(), impl_->reader.get(), impl_->sub.get()}) c->abandon();
  impl_->close_signals();
}

const std::string& RedisBroker::instance() const { return impl_->opts.instance; }

asio::awaitable<Status> RedisBroker::start() {
  auto& b = *impl_;
  for (auto [conn, lost] : {std::pair{b.cmd.get(), &b.cmd_lost}, std::pair{b.reader.get(), &b.reader_lost},
                            std::pair{b.sub.get(), &b.sub_lost}}) {
    conn->set_lost_handler([lost = lost, w = std::weak_ptr<Impl>(impl_)](const std::string&) {
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
  asio::post(b.ex, [self = impl_] { self->close_signals(); });
  b.cmd->close();
  b.reader->close();
  b.sub->close();
}

asio::awaitable<Result<std::shared_ptr<StreamWriter>>> RedisBroker::create(StreamSpec spec) {
  auto& b = *impl_;
  const std::int64_t now_ms = Impl::now_ms();
  const std::string now = std::to_string(now_ms);
  const script::Create record{.id = spec.id,
                              .instance = b.opts.instance,
                              .now_ms = now_ms,
                              .model = spec.model,
                              .message_count = spec.message_count,
                              .thinking = spec.thinking_enabled,
                              .owner = spec.owner};
  std::vector<RedisCommand> cmds;
  cmds.push_back(b.scripts.command(record));
  cmds.push_back(redis_args("ZADD", b.keys.running(), "NX", std::to_string(now_ms + b.opts.lease.count()), spec.id));
  cmds.push_back(redis_args("ZADD", b.keys.created(), now, spec.id));
  cmds.push_back(redis_args("ZADD", b.keys.owned(spec.owner), now, spec.id));
  auto r = co_await b.scripts.send(*b.cmd, std::move(cmds));
  if (!r) {  // it may have run before the connection failed: undone once Redis is back
    std::lock_guard lk(b.mu);
    b.unanswered_creates.emplace_back(spec.id, spec.owner);
    co_return r.error();
  }
  if (auto st = first_refusal(*r, "a create"); !st) co_return st.error();
  if ((*r)[0].integer < 1) co_return make_error(Errc::invalid_request, "Stream with this message_id already exists");
  spec.incarnation = static_cast<std::uint32_t>((*r)[0].integer);  // the local copy's frames carry it
  const std::string id = spec.id;
  // A stale local copy (a stream of that id deleted meanwhile) makes way; out of `watched`
  // first, so the mirror sweep leaves the new copy alone.
  {
    std::lock_guard lk(b.mu);
    b.watched.erase(id);
  }
  co_await b.mirror.remove(id, Removal::forget);
  // Its observers here read an event once it is in Redis, as observers anywhere else do: were this
  // instance to die, what they saw is what the others have.
  auto mirror = co_await b.mirror.create_held(std::move(spec));
  if (!mirror) co_return mirror.error();
  co_return b.make_writer(id, std::move(*mirror));
}

asio::awaitable<Result<StreamInfo>> RedisBroker::info(std::string id) {
  auto& b = *impl_;
  std::vector<RedisCommand> cmds;
  cmds.push_back(redis_args("HGETALL", b.keys.meta(id)));
  cmds.push_back(redis_args("HGETALL", b.keys.observers(id)));
  cmds.push_back(redis_args("ZRANGEBYSCORE", b.keys.instances(), std::to_string(Impl::now_ms()), "+inf"));
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
                                                                   std::uint32_t incarnation,
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
    auto cursor = co_await b.mirror.open(id, after, incarnation, ex);
    if (cursor) {
      co_return std::unique_ptr<Cursor>(std::make_unique<CountedCursor>(impl_, std::move(id), std::move(*cursor)));
    }
    if (attempt > 0) co_return cursor.error();
    if (cursor.error().code == Errc::conflict) {
      // A copy of another instance's stream may be of an incarnation deleted meanwhile (its delete
      // message not seen yet): Redis decides, once.
      bool watched = false;
      {
        std::lock_guard lk(b.mu);
        watched = b.watched.erase(id) > 0;
      }
      if (!watched) co_return cursor.error();
      co_await b.mirror.remove(id, Removal::forget);
      continue;
    }
    // The mirror sweep dropped an idle local copy just now: copy the stream again, once.
    if (cursor.error().code != Errc::not_found) co_return cursor.error();
  }
}

asio::awaitable<Status> RedisBroker::remove(std::string id, Removal how) {
  auto& b = *impl_;
  std::vector<RedisCommand> cmds;
  cmds.push_back(b.scripts.command(script::Remove{.id = id, .tombstone = how == Removal::tombstone}));
  cmds.push_back(redis_args("ZREM", b.keys.running(), id));
  cmds.push_back(redis_args("PUBLISH", b.keys.control(), "delete " + id));
  cmds.push_back(redis_args("ZREM", b.keys.created(), id));
  auto r = co_await b.scripts.send(*b.cmd, std::move(cmds));
  if (!r) co_return r.error();
  if (auto st = first_refusal(*r, "a delete"); !st) co_return st.error();
  {
    std::lock_guard lk(b.mu);
    b.owned.erase(id);
    b.watched.erase(id);
  }
  co_await b.mirror.remove(id, Removal::forget);
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
    auto range = redis_args("ZREVRANGEBYSCORE", b.keys.created(), top, "-inf", "LIMIT", std::to_string(offset),
                            std::to_string(kSlice));
    auto ids = co_await b.cmd->command(std::move(range));
    if (!ids) co_return ids.error();
    if (ids->is_error()) co_return refused(*ids, "a list");
    if (!ids->is_array() || ids->elements.empty()) break;
    std::vector<RedisCommand> fetch;
    for (const auto& e : ids->elements) {
      fetch.push_back(redis_args("HGETALL", b.keys.meta(e.str)));
      fetch.push_back(redis_args("HGETALL", b.keys.observers(e.str)));
    }
    fetch.push_back(redis_args("ZRANGEBYSCORE", b.keys.instances(), std::to_string(Impl::now_ms()), "+inf"));
    auto records = co_await b.cmd->pipeline(std::move(fetch));
    if (!records) co_return records.error();
    if (auto st = first_refusal(*records, "a list"); !st) co_return st.error();
    const RedisValue& live = records->back();
    std::vector<RedisCommand> stale;
    for (std::size_t i = 0; i < ids->elements.size(); ++i) {
      const std::string& id = ids->elements[i].str;
      std::string owner;
      auto info = parse_meta(id, (*records)[2 * i], &owner);
      if (!info) {
        stale.push_back(redis_args("ZREM", b.keys.created(), id));
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
  auto args = redis_args("HMGET", b.keys.meta(id), "status", "owner");
  auto r = co_await b.cmd->command(std::move(args));
  if (!r) co_return r.error();
  if (r->is_error()) co_return refused(*r, "a read");
  if (!r->is_array() || r->elements.size() < 2 || r->elements[0].is_nil()) co_return Impl::not_found(id);
  co_return r->elements[1].str;
}

asio::awaitable<Result<HeldStreams>> RedisBroker::held(std::string owner, HeldStreams limits) {
  auto& b = *impl_;
  const std::string owned = b.keys.owned(owner);
  for (int pass = 0;; ++pass) {
    std::vector<RedisCommand> counts;
    counts.push_back(redis_args("ZCARD", b.keys.created()));
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
      const std::string created = b.keys.created();
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
    b->park_flush(id, FlushWaiter{asio::get_associated_executor(handler), std::forward<Handler>(handler)});
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
  std::vector<RedisCommand> cmds;
  cmds.push_back(b.scripts.command(script::Cancel{id}));
  auto r = co_await b.scripts.send(*b.cmd, std::move(cmds));
  if (!r) co_return r.error();
  if (auto st = first_refusal(*r, "a cancel"); !st) co_return st.error();
  if (r->front().integer == 0) co_return Impl::not_found(id);
  co_return true;
}

asio::awaitable<Result<std::optional<KeyedJob>>> RedisBroker::find_key(std::string key) {
  auto& b = *impl_;
  auto get = redis_args("GET", b.keys.idempotency(key));
  auto r = co_await b.cmd->command(std::move(get));
  if (!r) co_return r.error();
  if (r->is_error()) co_return refused(*r, "a read");
  auto held = r->is_string() ? decode_keyed(r->str) : std::nullopt;
  if (!held) co_return std::optional<KeyedJob>();
  auto exists = redis_args("EXISTS", b.keys.meta(held->id));
  auto e = co_await b.cmd->command(std::move(exists));
  if (!e) co_return e.error();
  if (e->is_error()) co_return refused(*e, "a read");
  if (e->integer == 0) co_return std::optional<KeyedJob>();  // its stream is gone: the key is free
  co_return held;
}

asio::awaitable<Result<std::optional<KeyedJob>>> RedisBroker::claim_key(std::string key, KeyedJob job) {
  auto& b = *impl_;
  const std::string k = b.keys.idempotency(key);
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
      auto exists = redis_args("EXISTS", b.keys.meta(held->id));
      auto e = co_await b.cmd->command(std::move(exists));
      if (!e) co_return e.error();
      if (e->is_error()) co_return refused(*e, "an Idempotency-Key");
      if (e->integer != 0) co_return held;
    }
    const script::Rebind replace{.key = key, .expected = cur->str, .value = value, .ttl = kIdempotencyWindow};
    std::vector<RedisCommand> rebind;
    rebind.push_back(b.scripts.command(replace));
    auto rb = co_await b.scripts.send(*b.cmd, std::move(rebind));
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
  if (b.cmd->connected() && b.scripts.loaded() && b.reader->connected() && b.sub->connected()) return std::nullopt;
  std::lock_guard lk(b.mu);
  if (!b.last_failure.empty()) return b.last_failure;
  return "Redis at " + b.opts.endpoint.where() + " is unavailable";
}

}  // namespace spool
