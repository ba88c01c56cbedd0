#include "broker/memory_broker.hpp"

#include "stream/event_log.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>

namespace spool {
namespace asio = boost::asio;

namespace {

constexpr std::size_t kMaxChunkBytes = 1 << 20;

Error not_found(const std::string& id) {
  return make_error(Errc::not_found, "Stream with message_id " + id + " not found");
}

// The part of a cursor that a producer can wake: the suspended next(), on the cursor's executor.
struct Waker {
  explicit Waker(const asio::any_io_executor& ex) : executor(ex) {}
  asio::any_io_executor executor;
  // Set while next() waits. (std::optional because Boost 1.81's any_completion_handler
  // move-assignment recurses; only its move constructor is safe.)
  std::optional<asio::any_completion_handler<void()>> handler;
  bool registered = false;  // guarded by the stream's mutex

  // Resumes a waiting next() inline; call on `executor`.
  void fire() {
    if (!handler) return;
    asio::any_completion_handler<void()> h(std::move(*handler));
    handler.reset();
    std::move(h)();
  }
  // Resumes a waiting next() later; call on `executor`.
  void fire_later() {
    if (!handler) return;
    asio::any_completion_handler<void()> h(std::move(*handler));
    handler.reset();
    asio::post(executor, [h = std::move(h)]() mutable { std::move(h)(); });
  }
};

}  // namespace

struct MemoryBroker::Stream {
  mutable std::mutex mu;
  StreamInfo info;
  std::string owner;
  std::string key;  // the Idempotency-Key bound to it, if any (guarded by the broker's mutex)
  EventLog log;
  bool removed = false;
  std::vector<std::weak_ptr<Waker>> waiters;

  // Waiting cursors of one executor (io thread), woken by one posted handler.
  struct WakeBatch {
    asio::any_io_executor executor;
    std::vector<std::weak_ptr<Waker>> wakers;
  };
  using WakeList = std::vector<WakeBatch>;

  // Takes the waiting cursors, grouped by executor; call with mu held, then wake() unlocked.
  WakeList take_waiters_locked() {
    WakeList out;
    for (auto& w : waiters) {
      auto k = w.lock();
      if (!k) continue;
      k->registered = false;
      auto it = std::find_if(out.begin(), out.end(), [&](const WakeBatch& b) { return b.executor == k->executor; });
      if (it == out.end()) it = out.insert(out.end(), WakeBatch{k->executor, {}});
      it->wakers.push_back(std::move(w));
    }
    waiters.clear();
    return out;
  }

  // Posts one handler per executor that wakes its cursors.
  static void wake(WakeList list) {
    for (auto& b : list) {
      asio::post(b.executor, [wakers = std::move(b.wakers)] {
        for (const auto& w : wakers) {
          if (auto k = w.lock()) k->fire();
        }
      });
    }
  }
};

namespace {

class MemoryWriter final : public StreamWriter {
 public:
  explicit MemoryWriter(std::shared_ptr<MemoryBroker::Stream> s) : s_(std::move(s)) {}

  std::uint64_t publish(std::span<const NewEvent> events, std::optional<StreamStatus> status,
                        std::optional<std::string> error_message) override {
    std::uint64_t pos = 0;
    MemoryBroker::Stream::WakeList wake;
    {
      std::lock_guard lk(s_->mu);
      for (const auto& e : events) s_->log.append(e.type, e.json);
      s_->info.events = s_->log.size();
      const bool released = status && apply_status_locked(*status, std::move(error_message));
      if (!events.empty() || released) wake = s_->take_waiters_locked();
      pos = s_->log.size();
    }
    MemoryBroker::Stream::wake(std::move(wake));
    return pos;
  }

  void set_status(StreamStatus status, std::optional<std::string> error_message) override {
    MemoryBroker::Stream::WakeList wake;
    {
      std::lock_guard lk(s_->mu);
      if (apply_status_locked(status, std::move(error_message))) wake = s_->take_waiters_locked();
    }
    MemoryBroker::Stream::wake(std::move(wake));
  }

  void set_usage(Usage usage) override {
    std::lock_guard lk(s_->mu);
    s_->info.usage = usage;
  }

  void set_queue_position(std::optional<int> position) override {
    std::lock_guard lk(s_->mu);
    s_->info.queue_position = position;
  }

 private:
  // Moves to `status` unless terminal already; true when that released the observers.
  bool apply_status_locked(StreamStatus status, std::optional<std::string> error_message) {
    if (is_terminal(s_->info.status) || s_->info.status == status) return false;
    const SysTime now = std::chrono::system_clock::now();
    s_->info.status = status;
    s_->info.updated_at = now;
    if (error_message) s_->info.error_message = std::move(error_message);
    if (!is_terminal(status)) return false;
    s_->info.completed_at = now;
    s_->info.queue_position.reset();
    return true;
  }

  std::shared_ptr<MemoryBroker::Stream> s_;
};

class MemoryCursor final : public Cursor {
 public:
  MemoryCursor(std::shared_ptr<MemoryBroker::Stream> s, std::uint64_t after, const asio::any_io_executor& ex,
               std::atomic<std::size_t>& open_cursors)
      : s_(std::move(s)), pos_(after), waker_(std::make_shared<Waker>(ex)), open_cursors_(open_cursors) {
    open_cursors_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lk(s_->mu);
    ++s_->info.observers;
    exhausted_ = is_terminal(s_->info.status) && pos_ >= s_->log.size();
  }

  ~MemoryCursor() override {
    open_cursors_.fetch_sub(1, std::memory_order_relaxed);
    std::lock_guard lk(s_->mu);
    --s_->info.observers;
  }

  asio::awaitable<ReadChunk> next() override {
    ReadChunk chunk;
    buffers_.clear();
    for (;;) {
      if (aborted_) co_return chunk;
      if (interrupted_) {
        interrupted_ = false;
        chunk.kind = ReadChunk::Kind::interrupted;
        co_return chunk;
      }
      {
        std::lock_guard lk(s_->mu);
        if (s_->removed) co_return chunk;
        if (pos_ < s_->log.size()) {
          const std::uint64_t to = s_->log.gather(pos_, kMaxChunkBytes, buffers_);
          chunk.kind = ReadChunk::Kind::data;
          chunk.events = to - pos_;
          chunk.buffers = buffers_;
          pos_ = to;
          co_return chunk;
        }
        if (is_terminal(s_->info.status)) co_return chunk;
        if (!waker_->registered) {
          waker_->registered = true;
          s_->waiters.push_back(waker_);
        }
      }
      co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
          [w = waker_.get()](auto handler) { w->handler.emplace(std::move(handler)); }, asio::use_awaitable);
    }
  }

  void interrupt() override {
    interrupted_ = true;
    waker_->fire_later();
  }

  void abort() override {
    aborted_ = true;
    waker_->fire_later();
  }

  bool exhausted_at_open() const override { return exhausted_; }

 private:
  std::shared_ptr<MemoryBroker::Stream> s_;
  std::uint64_t pos_;
  std::shared_ptr<Waker> waker_;
  std::atomic<std::size_t>& open_cursors_;
  std::vector<asio::const_buffer> buffers_;  // what the last next() returned
  bool aborted_ = false;
  bool interrupted_ = false;
  bool exhausted_ = false;
};

}  // namespace

MemoryBroker::MemoryBroker(const asio::any_io_executor& ex, MemoryBrokerOptions opts)
    : opts_(opts), sweep_timer_(std::make_unique<asio::steady_timer>(ex)) {
  schedule_sweep();
}

MemoryBroker::~MemoryBroker() = default;

void MemoryBroker::schedule_sweep() {
  if (!sweep_timer_) return;  // stopped
  sweep_timer_->expires_after(opts_.sweep_interval);
  sweep_timer_->async_wait([this](boost::system::error_code ec) {
    if (ec || !sweep_timer_) return;
    sweep_expired(std::chrono::system_clock::now());
    schedule_sweep();
  });
}

void MemoryBroker::stop() { sweep_timer_.reset(); }

std::size_t MemoryBroker::sweep_expired(SysTime now) {
  if (opts_.stream_expiration.count() <= 0) return 0;
  std::vector<std::shared_ptr<Stream>> expired;
  {
    std::lock_guard lk(mu_);
    for (auto it = streams_.begin(); it != streams_.end();) {
      bool gone = false;
      {
        std::lock_guard slk(it->second->mu);
        const auto& info = it->second->info;
        gone = is_terminal(info.status) && info.completed_at && *info.completed_at + opts_.stream_expiration <= now;
      }
      if (gone) {
        drop_key_locked(*it->second);
        expired.push_back(std::move(it->second));
        it = streams_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& s : expired) {
    Stream::WakeList wake;
    {
      std::lock_guard slk(s->mu);
      s->removed = true;
      wake = s->take_waiters_locked();
    }
    Stream::wake(std::move(wake));
  }
  return expired.size();
}

std::shared_ptr<MemoryBroker::Stream> MemoryBroker::find(const std::string& id) const {
  std::lock_guard lk(mu_);
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second;
}

asio::awaitable<Result<std::shared_ptr<StreamWriter>>> MemoryBroker::create(StreamSpec spec) {
  auto s = std::make_shared<Stream>();
  const SysTime now = std::chrono::system_clock::now();
  s->info.id = spec.id;
  s->info.created_at = now;
  s->info.updated_at = now;
  s->info.model = spec.model;
  s->info.message_count = spec.message_count;
  s->info.thinking_enabled = spec.thinking_enabled;
  s->owner = spec.owner;
  {
    std::lock_guard lk(mu_);
    if (!streams_.try_emplace(spec.id, s).second) {
      co_return make_error(Errc::invalid_request, "Stream with this message_id already exists");
    }
  }
  co_return std::shared_ptr<StreamWriter>(std::make_shared<MemoryWriter>(std::move(s)));
}

asio::awaitable<Result<StreamInfo>> MemoryBroker::info(std::string id) {
  auto s = find(id);
  if (!s) co_return not_found(id);
  std::lock_guard lk(s->mu);
  co_return s->info;
}

asio::awaitable<Result<std::unique_ptr<Cursor>>> MemoryBroker::open(std::string id, std::uint64_t after,
                                                                    asio::any_io_executor ex) {
  auto s = find(id);
  if (!s) co_return not_found(id);
  auto cursor = std::make_unique<MemoryCursor>(s, after, std::move(ex), open_cursors_);
  {
    std::lock_guard lk(s->mu);
    if (s->removed) co_return not_found(id);  // removed since find(): deleted, or an idle copy dropped
  }
  co_return std::unique_ptr<Cursor>(std::move(cursor));
}

asio::awaitable<Status> MemoryBroker::remove(std::string id) {
  std::shared_ptr<Stream> s;
  {
    std::lock_guard lk(mu_);
    auto it = streams_.find(id);
    if (it == streams_.end()) co_return not_found(id);
    s = std::move(it->second);
    streams_.erase(it);
    drop_key_locked(*s);
  }
  Stream::WakeList wake;
  {
    std::lock_guard slk(s->mu);
    s->removed = true;
    wake = s->take_waiters_locked();
  }
  Stream::wake(std::move(wake));
  co_return Ok{};
}

int MemoryBroker::observers_of(const std::string& id) const {
  auto s = find(id);
  if (!s) return 0;
  std::lock_guard lk(s->mu);
  return s->info.observers;
}

bool MemoryBroker::remove_if_unobserved(const std::string& id) {
  std::lock_guard lk(mu_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return false;
  const std::shared_ptr<Stream> s = it->second;
  std::lock_guard slk(s->mu);
  if (s->info.observers > 0) return false;
  streams_.erase(it);
  drop_key_locked(*s);
  s->removed = true;  // a cursor being opened right now sees this: open() answers not_found
  return true;
}

asio::awaitable<Result<std::string>> MemoryBroker::owner(std::string id) {
  auto s = find(id);
  if (!s) co_return not_found(id);
  co_return s->owner;
}

void MemoryBroker::drop_key_locked(const Stream& s) {
  if (s.key.empty()) return;
  auto it = keys_.find(s.key);
  if (it != keys_.end() && it->second.id == s.info.id) keys_.erase(it);
}

asio::awaitable<Result<std::optional<KeyedJob>>> MemoryBroker::find_key(std::string key) {
  std::lock_guard lk(mu_);
  auto it = keys_.find(key);
  if (it == keys_.end()) co_return std::optional<KeyedJob>();
  co_return std::optional<KeyedJob>(it->second);
}

asio::awaitable<Result<std::optional<KeyedJob>>> MemoryBroker::claim_key(std::string key, KeyedJob job) {
  std::lock_guard lk(mu_);
  auto held = keys_.find(key);
  if (held != keys_.end() && held->second.id != job.id) co_return std::optional<KeyedJob>(held->second);
  auto s = streams_.find(job.id);
  if (s == streams_.end()) co_return not_found(job.id);
  s->second->key = key;
  keys_[std::move(key)] = std::move(job);
  co_return std::optional<KeyedJob>();
}

std::vector<std::pair<StreamStatus, std::size_t>> MemoryBroker::counts() const {
  std::size_t n[5] = {};
  std::lock_guard lk(mu_);
  for (const auto& [id, s] : streams_) {
    std::lock_guard slk(s->mu);
    ++n[static_cast<int>(s->info.status)];
  }
  return {{StreamStatus::pending, n[0]},
          {StreamStatus::processing, n[1]},
          {StreamStatus::completed, n[2]},
          {StreamStatus::cancelled, n[3]},
          {StreamStatus::error, n[4]}};
}

std::size_t MemoryBroker::observers() const { return open_cursors_.load(std::memory_order_relaxed); }

}  // namespace spool
