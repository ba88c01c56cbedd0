#include "broker/memory_broker.hpp"

#include "broker/memory_cursors.hpp"

#include "core/error_body.hpp"
#include "stream/event_log.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <future>

#include <spdlog/spdlog.h>
#include <boost/json/serialize.hpp>

namespace spool {
namespace asio = boost::asio;

namespace {

Error not_found(const std::string& id) {
  return make_error(Errc::not_found, "Stream with message_id " + id + " not found");
}

// Not a coroutine (g++ 12 mishandles temporaries around co_await): the operation that queues a
// store write through `write(done)` and completes, on the caller's executor, once it is committed.
template <class Write>
asio::awaitable<void> committed(Write write) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [write = std::move(write)](auto handler) mutable {
        auto ex = asio::get_associated_executor(handler);
        using Handler = decltype(handler);
        auto h = std::make_shared<std::optional<Handler>>(std::move(handler));
        write([h, ex] {
          asio::post(ex, [h] {
            Handler run(std::move(**h));
            h->reset();
            std::move(run)();
          });
        });
      },
      asio::use_awaitable);
}

}  // namespace

namespace {

// Marks `s` removed (and removes it from its store, with `tombstone` if any); returns its waiting
// cursors to wake. Call with the broker's and the stream's locks held, after taking it out of the
// broker's map.
MemoryBroker::Stream::WakeList remove_locked(MemoryBroker::Stream& s, std::optional<Tombstone> tombstone) {
  s.removed = true;
  if (s.store != nullptr) s.store->remove(s.info.id, std::move(tombstone), {});
  return s.take_waiters_locked();
}

// Makes events up to `upto` (and the end, if `ended`) readable by the observers of `w`.
void make_readable(const std::weak_ptr<MemoryBroker::Stream>& w, std::uint64_t upto, bool ended) {
  auto s = w.lock();
  if (!s) return;
  MemoryBroker::Stream::WakeList wake;
  {
    std::lock_guard lk(s->mu);
    s->visible = std::max(s->visible, upto);
    s->ended = s->ended || ended;
    wake = s->take_waiters_locked();
    s->evict_if_idle_locked();
  }
  MemoryBroker::Stream::wake(std::move(wake));
}

class MemoryWriter final : public StreamWriter {
 public:
  explicit MemoryWriter(std::shared_ptr<MemoryBroker::Stream> s) : s_(std::move(s)) {}

  std::uint64_t publish(std::span<const NewEvent> events, std::optional<StreamStatus> status,
                        std::optional<std::string> error_message) override {
    std::uint64_t pos = 0;
    MemoryBroker::Stream::WakeList wake;
    {
      std::lock_guard lk(s_->mu);
      if (s_->on_disk) return s_->info.events;  // ended and stored: nothing more is written to it
      const std::uint64_t first = s_->log.size() + 1;
      for (const auto& e : events) s_->log.append(e.type, e.json);
      s_->info.events = s_->log.size();
      const bool changed = status && apply_status_locked(*status, std::move(error_message));
      const bool released = changed && is_terminal(s_->info.status);
      pos = s_->log.size();
      if (s_->held_back && !s_->removed) {
        // Readable once stored elsewhere: the owner calls MemoryBroker::make_visible.
      } else if (s_->store == nullptr || s_->removed) {  // a removed stream writes nothing more
        s_->visible = pos;
        s_->ended = s_->ended || released;
        if (!events.empty() || released) wake = s_->take_waiters_locked();
      } else if (!events.empty() || changed) {
        // Queued under the stream's lock, so the store gets one stream's writes in order; the
        // observers see them once the last is committed.
        StreamStore::Written visible = [w = std::weak_ptr(s_), pos, released] { make_readable(w, pos, released); };
        // The events and the record they change in one write: a crash keeps both or neither.
        using Change = StreamStore::Change;
        const Change change = changed ? Change::record : s_->usage_dirty ? Change::usage : Change::none;
        s_->usage_dirty = false;
        if (!events.empty()) {
          std::string frames;
          s_->log.copy(first - 1, pos, frames);
          s_->store->append(s_->info, first, events.size(), std::move(frames), change, std::move(visible));
        } else {
          s_->store->update(s_->info, std::move(visible));
        }
      }
    }
    MemoryBroker::Stream::wake(std::move(wake));
    return pos;
  }

  void set_status(StreamStatus status, std::optional<std::string> error_message) override {
    publish({}, status, std::move(error_message));
  }

  void set_usage(Usage usage) override {
    std::lock_guard lk(s_->mu);
    s_->info.usage = usage;
    s_->usage_dirty = s_->store != nullptr;  // stored with the stream's next events or status
  }

  void set_queue_position(std::optional<int> position) override {
    std::lock_guard lk(s_->mu);
    s_->info.queue_position = position;
  }

 private:
  // Moves to `status` unless terminal already; true when the status changed.
  bool apply_status_locked(StreamStatus status, std::optional<std::string> error_message) {
    if (is_terminal(s_->info.status) || s_->info.status == status) return false;
    const SysTime now = std::chrono::system_clock::now();
    s_->info.status = status;
    s_->info.updated_at = now;
    if (error_message) s_->info.error_message = std::move(error_message);
    if (is_terminal(status)) {
      s_->info.completed_at = now;
      s_->info.queue_position.reset();
    }
    return true;
  }

  std::shared_ptr<MemoryBroker::Stream> s_;
};

}  // namespace

MemoryBroker::MemoryBroker(const asio::any_io_executor& ex, MemoryBrokerOptions opts)
    : opts_(opts),
      sweep_timer_(std::make_unique<asio::steady_timer>(ex)),
      tombstones_(opts.incarnation_memory, opts.most_tombstones) {
  if (opts_.store != nullptr && opts_.store->reads_back()) {
    disk_ = std::make_unique<asio::thread_pool>(1);
    lingering_ = std::make_unique<LingeringLogs>(opts_.lingering_bytes, opts_.linger);
  }
  schedule_sweep();
}

MemoryBroker::~MemoryBroker() = default;

void MemoryBroker::schedule_sweep() {
  if (!sweep_timer_) return;  // stopped
  sweep_timer_->expires_after(opts_.sweep_interval);
  sweep_timer_->async_wait([this](boost::system::error_code ec) {
    if (ec || !sweep_timer_) return;
    sweep_expired(std::chrono::system_clock::now());
    drop_lingering();
    schedule_sweep();
  });
}

void MemoryBroker::drop_lingering() {
  if (!lingering_) return;
  for (auto& [w, ticket] : lingering_->due(LingeringLogs::Clock::now())) {
    auto s = w.lock();
    if (!s) continue;
    std::lock_guard lk(s->mu);
    if (s->linger_ticket == ticket && s->idle_locked()) s->drop_log_locked();
  }
  // Logs that left memory are free, but the allocator keeps the pages: give them back, off the
  // network thread.
  if (lingering_->trim_due.exchange(false, std::memory_order_relaxed)) {
    asio::post(disk_->get_executor(), [] { ::malloc_trim(0); });
  }
}

void MemoryBroker::stop() { sweep_timer_.reset(); }

std::size_t MemoryBroker::sweep_expired(SysTime now) {
  std::vector<Stream::WakeList> wakes;
  {
    std::lock_guard lk(mu_);
    tombstones_.sweep(now);
    if (opts_.stream_expiration.count() <= 0) return 0;
    for (auto it = streams_.begin(); it != streams_.end();) {
      Stream& s = *it->second;
      std::unique_lock slk(s.mu);
      const auto& info = s.info;
      if (is_terminal(info.status) && info.completed_at && *info.completed_at + opts_.stream_expiration <= now) {
        drop_key_locked(s);
        count_held_locked(s.owner, false);
        const Tombstone t{info.id, info.incarnation, now};
        tombstones_.remember(t);
        wakes.push_back(remove_locked(s, t));
        slk.unlock();
        it = streams_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& w : wakes) Stream::wake(std::move(w));
  return wakes.size();
}

std::shared_ptr<MemoryBroker::Stream> MemoryBroker::find(const std::string& id) const {
  std::lock_guard lk(mu_);
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second;
}

asio::awaitable<Result<std::shared_ptr<StreamWriter>>> MemoryBroker::create(StreamSpec spec) {
  return create_stream(std::move(spec), false);
}

asio::awaitable<Result<std::shared_ptr<StreamWriter>>> MemoryBroker::create_held(StreamSpec spec) {
  return create_stream(std::move(spec), true);
}

void MemoryBroker::make_visible(const std::string& id, std::uint64_t upto, bool ended) {
  if (auto s = find(id)) make_readable(s, upto, ended);
}

asio::awaitable<Result<std::shared_ptr<StreamWriter>>> MemoryBroker::create_stream(StreamSpec spec, bool held_back) {
  auto s = std::make_shared<Stream>();
  s->held_back = held_back;
  const SysTime now = std::chrono::system_clock::now();
  s->info.id = spec.id;
  s->info.created_at = now;
  s->info.updated_at = now;
  s->info.model = spec.model;
  s->info.message_count = spec.message_count;
  s->info.thinking_enabled = spec.thinking_enabled;
  s->owner = spec.owner;
  s->store = opts_.store;
  s->lingering = lingering_.get();
  {
    std::lock_guard lk(mu_);
    if (streams_.contains(std::string_view(s->info.id))) {
      co_return make_error(Errc::invalid_request, "Stream with this message_id already exists");
    }
    // Its incarnation is settled before anyone can find it.
    s->info.incarnation = spec.incarnation != 0 ? spec.incarnation : tombstones_.next(s->info.id);
    s->log.set_incarnation(s->info.incarnation);
    streams_.emplace(std::string_view(s->info.id), s);
    count_held_locked(s->owner, true);
    // Queued under the broker's lock: a remove of this id can only be queued after it.
    if (opts_.store != nullptr) opts_.store->create(s->info, s->owner, {});
  }
  if (opts_.store != nullptr) {
    auto stored = committed([store = opts_.store](StreamStore::Written done) { store->barrier(std::move(done)); });
    co_await std::move(stored);
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
                                                                    std::uint32_t incarnation,
                                                                    asio::any_io_executor ex) {
  auto s = find(id);
  if (!s) co_return not_found(id);
  bool on_disk = false;
  {
    std::lock_guard lk(s->mu);
    if (s->removed) co_return not_found(id);  // removed since find(): deleted, or an idle copy dropped
    // Position 0 names no event: a cursor there cannot resume into another stream's.
    if (incarnation != 0 && after > 0 && incarnation != s->info.incarnation) {
      co_return incarnation_conflict(id, after, incarnation, s->info.incarnation);
    }
    on_disk = s->on_disk;
    ++s->info.observers;  // counted now: the log stays where it is for this cursor
  }
  std::unique_ptr<Cursor> cursor;
  if (on_disk) {
    cursor = make_stored_cursor(s, after, disk_->get_executor(), open_cursors_);
  } else {
    cursor = make_memory_cursor(s, after, ex, open_cursors_);
  }
  co_return cursor;
}

asio::awaitable<Status> MemoryBroker::remove(std::string id, Removal how) {
  std::shared_ptr<Stream> s;
  Stream::WakeList wake;
  {
    // Both locks: the store gets the removal after the stream's own writes and before the
    // creation of a new stream with the same id.
    std::lock_guard lk(mu_);
    auto it = streams_.find(id);
    if (it == streams_.end()) co_return not_found(id);
    s = std::move(it->second);
    streams_.erase(it);
    drop_key_locked(*s);
    count_held_locked(s->owner, false);
    std::lock_guard slk(s->mu);
    std::optional<Tombstone> tombstone;
    if (how == Removal::tombstone) {
      tombstone = Tombstone{id, s->info.incarnation, std::chrono::system_clock::now()};
      tombstones_.remember(*tombstone);
    }
    wake = remove_locked(*s, std::move(tombstone));
  }
  Stream::wake(std::move(wake));
  if (s->store != nullptr) {
    auto stored = committed([store = s->store](StreamStore::Written done) { store->barrier(std::move(done)); });
    co_await std::move(stored);
  }
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
  count_held_locked(s->owner, false);
  remove_locked(*s, std::nullopt);  // no cursor waits; one being opened right now sees `removed`: not_found
  return true;
}

asio::awaitable<Result<StreamPage>> MemoryBroker::list(ListQuery q) {
  // Candidates by reference (id and created_at never change), sorted; records copied for the page only.
  std::vector<std::shared_ptr<Stream>> found;
  {
    std::lock_guard lk(mu_);
    for (const auto& [id, s] : streams_) {
      std::lock_guard slk(s->mu);
      if (q.owner && s->owner != *q.owner) continue;
      if (matches(q, s->info)) found.push_back(s);
    }
  }
  const std::size_t n = std::min(found.size(), q.limit);
  std::partial_sort(found.begin(), found.begin() + static_cast<std::ptrdiff_t>(n), found.end(),
                    [](const auto& a, const auto& b) { return lists_before(a->info, b->info); });
  StreamPage page;
  page.has_more = found.size() > n;
  page.streams.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::lock_guard slk(found[i]->mu);
    page.streams.push_back(found[i]->info);
  }
  co_return page;
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
  if (opts_.store != nullptr) opts_.store->bind_key(job.id, key, job.digest, {});
  keys_[std::move(key)] = std::move(job);
  co_return std::optional<KeyedJob>();
}

asio::awaitable<Status> MemoryBroker::flush(std::string /*id*/) {
  if (opts_.store != nullptr) {
    auto stored = committed([store = opts_.store](StreamStore::Written done) { store->barrier(std::move(done)); });
    co_await std::move(stored);
  }
  co_return Ok{};
}

std::size_t MemoryBroker::restore(std::vector<StoredStream> streams, std::vector<Tombstone> tombstones) {
  std::size_t interrupted = 0;
  const SysTime now = std::chrono::system_clock::now();
  std::unique_lock lk(mu_);
  // Oldest first, as they were removed: the sweep and the cap forget the oldest first.
  std::sort(tombstones.begin(), tombstones.end(),
            [](const Tombstone& a, const Tombstone& b) { return a.removed_at < b.removed_at; });
  for (const auto& t : tombstones) tombstones_.remember(t);
  tombstones_.sweep(now);
  for (auto& stored : streams) {
    auto s = std::make_shared<Stream>();
    s->store = opts_.store;
    s->lingering = lingering_.get();
    s->info = std::move(stored.info);
    s->owner = std::move(stored.owner);
    s->log.set_incarnation(s->info.incarnation);
    // A store that reads logs back keeps them on disk; another hands them over.
    s->on_disk = s->lingering != nullptr && stored.events.empty();
    for (const auto& e : stored.events) s->log.append(e.type, e.json);
    if (!s->on_disk) s->info.events = s->log.size();
    if (!is_terminal(s->info.status)) {
      // It was running when the process stopped: it ends here, as a job that failed would.
      const Error e = make_error(Errc::internal, std::string(kInterruptedByRestart));
      const std::uint64_t position = s->info.events + 1;
      const std::string error = boost::json::serialize(error_body(e, s->info.id));
      if (!s->on_disk) s->log.append("error", error);
      s->info.events = position;
      s->info.status = StreamStatus::error;
      s->info.error_message = e.explanation;
      s->info.updated_at = now;
      s->info.completed_at = now;
      if (opts_.store != nullptr) {
        std::string frame;
        append_frame(frame, "error", error, EventId{position, s->info.incarnation});
        opts_.store->append(s->info, position, 1, std::move(frame), StreamStore::Change::record, {});
      }
      ++interrupted;
    }
    s->info.queue_position.reset();
    s->visible = s->info.events;
    s->ended = true;
    if (!stored.key.empty()) {
      s->key = stored.key;
      keys_[stored.key] = KeyedJob{s->info.id, std::move(stored.digest)};
    }
    count_held_locked(s->owner, true);
    const std::string_view key = s->info.id;
    streams_.erase(key);  // (ids are unique in a store; an entry's key must view its own stream)
    streams_.emplace(key, std::move(s));
  }
  lk.unlock();
  if (interrupted > 0 && opts_.store != nullptr) {
    std::promise<void> written;
    opts_.store->barrier([&written] { written.set_value(); });
    written.get_future().wait();
  }
  return interrupted;
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

void MemoryBroker::count_held_locked(const std::string& owner, bool in) {
  if (in) {
    ++held_by_owner_[owner];
  } else if (auto it = held_by_owner_.find(owner); it != held_by_owner_.end() && --it->second == 0) {
    held_by_owner_.erase(it);
  }
}

asio::awaitable<Result<HeldStreams>> MemoryBroker::held(std::string owner, HeldStreams /*limits: counts are exact*/) {
  std::lock_guard lk(mu_);
  const auto it = held_by_owner_.find(owner);
  co_return HeldStreams{streams_.size(), it == held_by_owner_.end() ? 0 : it->second};
}

std::size_t MemoryBroker::tombstones() const {
  std::lock_guard lk(mu_);
  return tombstones_.size();
}

std::size_t MemoryBroker::observers() const { return open_cursors_.load(std::memory_order_relaxed); }

std::size_t MemoryBroker::logs_in_memory() const {
  std::size_t n = 0;
  std::lock_guard lk(mu_);
  for (const auto& [id, s] : streams_) {
    std::lock_guard slk(s->mu);
    n += s->on_disk ? 0 : 1;
  }
  return n;
}

}  // namespace spool
