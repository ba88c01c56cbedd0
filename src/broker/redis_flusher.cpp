// The Redis broker's write path: a stream's events go to its local copy at once and to Redis in
// pipelined batches (one script call per stream per batch, sent again after a failure, never lost
// while the process lives); its observers here read an event once Redis has it.
#include "broker/redis_broker_impl.hpp"

#include <boost/asio/post.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace spool {
namespace asio = boost::asio;

void FlushWaiter::resume(Status st) && {
  asio::post(ex, [h = std::move(h), st = std::move(st)]() mutable { std::move(h)(std::move(st)); });
}

RedisOutbox::Taken RedisOutbox::taken() const {
  return Taken{events.size(), status, error_message, usage, queue_position, status && is_terminal(*status)};
}

void RedisOutbox::drop(const Taken& t) {
  events.erase(events.begin(), events.begin() + static_cast<std::ptrdiff_t>(t.events));
  // Only what was sent is settled: a status (cancelled, say) queued while a batch carrying an
  // earlier one (processing) was in flight is still owed.
  if (t.status && status == t.status) status.reset();
  if (t.error_message && error_message == t.error_message) error_message.reset();
  if (t.usage && usage && usage->input_tokens == t.usage->input_tokens &&
      usage->output_tokens == t.usage->output_tokens) {
    usage.reset();
  }
  if (t.queue_position && queue_position == t.queue_position) queue_position.reset();
}

void RedisBatch::add(std::vector<std::string> c, OnReply on_reply) {
  commands_.push_back(std::move(c));
  handlers_.push_back(std::move(on_reply));
}

void RedisBatch::dispatch(const std::vector<RedisValue>& replies) const {
  for (std::size_t i = 0; i < handlers_.size() && i < replies.size(); ++i) {
    if (handlers_[i]) handlers_[i](replies[i]);
  }
}

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

}  // namespace

std::shared_ptr<StreamWriter> RedisBroker::Impl::make_writer(const std::string& id,
                                                             std::shared_ptr<StreamWriter> mirror) {
  {
    std::lock_guard lk(mu);
    owned[id].mirror = mirror;
  }
  return std::make_shared<RedisWriter>(shared_from_this(), id, std::move(mirror));
}

void RedisBroker::Impl::park_flush(const std::string& id, FlushWaiter w) {
  std::unique_lock lk(mu);
  auto it = owned.find(id);
  const bool pending = it != owned.end() && !it->second.out.empty();
  if (!pending) {
    lk.unlock();
    std::move(w).resume(Ok{});
  } else if (!cmd->connected()) {  // kept for later, but nobody waits for Redis to come back
    lk.unlock();
    std::move(w).resume(make_error(Errc::broker_unavailable, "Redis at " + opts.endpoint.where() +
                                                                 " is unavailable; the change is kept and written "
                                                                 "when it is back"));
  } else {
    it->second.waiters.push_back(std::move(w));
    lk.unlock();
    kick_flush();
  }
}

// What a batch's replies leave to do once the lock is released.
struct RedisBroker::Impl::Settled {
  struct Stored {
    std::string id;
    std::uint64_t last;
    bool terminal;
  };
  std::vector<Stored> stored;                // readable by the observers here from now on
  std::vector<FlushWaiter> flushed;          // their streams' outboxes are stored
  std::vector<std::string> ended_elsewhere;  // deleted, or ended by another instance
  std::vector<std::string> observers_sent;   // streams whose observer counts the batch carried
  bool reload = false;                       // Redis said NOSCRIPT
};

asio::awaitable<void> RedisBroker::Impl::flusher() {
  auto self = shared_from_this();
  std::chrono::milliseconds backoff = kFirstBackoff;
  while (!stopping) {
    Settled settled;
    RedisBatch batch = take_batch(settled);
    if (batch.empty() || !cmd->connected()) {
      co_await flush_wake.wait();
      continue;
    }
    auto cmds = batch.take_commands();
    auto replies = co_await cmd->pipeline(std::move(cmds));
    if (!replies) {
      fail_waiters(replies.error());
      {
        std::lock_guard lk(mu);
        observed_dirty.insert(settled.observers_sent.begin(), settled.observers_sent.end());
      }
      if (backoff == kFirstBackoff) spdlog::warn("redis broker: writes failed: {}", replies.error().explanation);
      co_await back_off(backoff);  // kept: sent again once Redis answers
      continue;
    }
    backoff = kFirstBackoff;
    {
      std::lock_guard lk(mu);
      batch.dispatch(*replies);
    }
    co_await settle(std::move(settled), backoff);
  }
}

// One append per stream with something owed (and the end of its lease when it ends), then the
// observer counts that changed; the replies' handlers fill `s`.
RedisBatch RedisBroker::Impl::take_batch(Settled& s) {
  RedisBatch batch;
  std::lock_guard lk(mu);
  for (auto& [id, o] : owned) {
    if (o.out.empty()) continue;
    const RedisOutbox::Taken taken = o.out.taken();
    const script::Append append{.id = id,
                                .instance = opts.instance,
                                .now_ms = now_ms(),
                                .status = o.out.status,
                                .error_message = o.out.error_message,
                                .expire = expire(),
                                .usage = o.out.usage,
                                .queue_position = o.out.queue_position,
                                .events = o.out.events};
    batch.add(scripts.command(append),
              [this, &s, id = id, taken](const RedisValue& v) { on_append_reply(id, taken, v, s); });
    if (taken.terminal) batch.add(redis_args("ZREM", keys.running(), id));
  }
  if (cmd->connected()) {
    for (const auto& id : observed_dirty) {
      const script::Observers counts{.id = id, .instance = opts.instance, .count = mirror.observers_of(id)};
      batch.add(scripts.command(counts), [&s](const RedisValue& v) { s.reload = s.reload || is_noscript(v); });
    }
    s.observers_sent.assign(observed_dirty.begin(), observed_dirty.end());
    observed_dirty.clear();
  }
  return batch;
}

// Called with `mu` held.
void RedisBroker::Impl::on_append_reply(const std::string& id, const RedisOutbox::Taken& t, const RedisValue& v,
                                        Settled& s) {
  auto it = owned.find(id);
  if (it == owned.end()) return;
  Owned& o = it->second;
  if (v.is_error()) {
    if (is_noscript(v)) {
      s.reload = true;  // Redis restarted: load and resend
    } else {
      spdlog::error("redis broker: append to {} failed: {}", id, v.str);
    }
    return;
  }
  if (v.integer < 0) {  // deleted, or ended by another instance (lease lost): stop the job
    s.ended_elsewhere.push_back(id);
    std::move(o.waiters.begin(), o.waiters.end(), std::back_inserter(s.flushed));
    owned.erase(it);
    return;
  }
  s.stored.push_back(Settled::Stored{id, static_cast<std::uint64_t>(v.integer), t.terminal});
  o.out.drop(t);
  if (!o.out.empty()) return;
  std::move(o.waiters.begin(), o.waiters.end(), std::back_inserter(s.flushed));
  o.waiters.clear();
  if (o.terminal) {  // finished and stored: its local copy stays while observed
    Watched& w = watched[id];
    w.mirror = o.mirror;
    w.position = o.position;
    w.loaded = w.terminal = true;
    owned.erase(it);
  }
}

asio::awaitable<void> RedisBroker::Impl::settle(Settled s, std::chrono::milliseconds& backoff) {
  for (const auto& st : s.stored) mirror.make_visible(st.id, st.last, st.terminal);
  for (auto& w : s.flushed) std::move(w).resume(Ok{});
  for (const auto& id : s.ended_elsewhere) {
    if (on_cancel) on_cancel(id);
    // Its copy here holds events Redis never got: its observers end and resume from Redis.
    co_await mirror.remove(id, Removal::forget);
  }
  if (!s.reload) co_return;
  {
    std::lock_guard lk(mu);
    observed_dirty.insert(s.observers_sent.begin(), s.observers_sent.end());
  }
  scripts.forget();
  if (auto loaded = co_await scripts.load(*cmd); !loaded) co_await back_off(backoff);
  kick_flush();  // what is left is sent again
}

void RedisBroker::Impl::fail_waiters(const Error& e) {
  std::vector<FlushWaiter> hs;
  {
    std::lock_guard lk(mu);
    for (auto& [id, o] : owned) {
      for (auto& w : o.waiters) hs.push_back(std::move(w));
      o.waiters.clear();
    }
  }
  for (auto& h : hs) std::move(h).resume(e);
}

}  // namespace spool
