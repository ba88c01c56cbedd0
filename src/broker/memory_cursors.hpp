// The memory broker's stream (a record with its log and waiting cursors) and its two cursors:
// one on a log in memory, one on a log that left it for the store. Internal to the broker room.
#pragma once

#include "broker/memory_broker.hpp"
#include "stream/event_log.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace spool {

// The most a cursor returns at a time.
inline constexpr std::size_t kMaxChunkBytes = std::size_t{1} << 20;

// The part of a cursor that a producer can wake: the suspended next(), on the cursor's executor.
struct Waker {
  explicit Waker(const boost::asio::any_io_executor& ex) : executor(ex) {}
  boost::asio::any_io_executor executor;
  // Set while next() waits. (std::optional because Boost 1.81's any_completion_handler
  // move-assignment recurses; only its move constructor is safe.)
  std::optional<boost::asio::any_completion_handler<void()>> handler;
  bool registered = false;  // guarded by the stream's mutex

  // Resumes a waiting next() inline; call on `executor`.
  void fire() {
    if (!handler) return;
    boost::asio::any_completion_handler<void()> h(std::move(*handler));
    handler.reset();
    std::move(h)();
  }
  // Resumes a waiting next() later; call on `executor`.
  void fire_later() {
    if (!handler) return;
    boost::asio::any_completion_handler<void()> h(std::move(*handler));
    handler.reset();
    boost::asio::post(executor, [h = std::move(h)]() mutable { std::move(h)(); });
  }
};

// Finished logs whose last reader left stay in memory a while (the observer of a job that just
// ended often comes, or comes back, a moment later), within a byte budget; the broker's sweep
// then drops them. Thread-safe; takes no stream's lock.
class LingeringLogs {
 public:
  using Clock = std::chrono::steady_clock;
  LingeringLogs(std::size_t budget, std::chrono::milliseconds linger) : budget_(budget), linger_(linger) {}

  // True when a log of `bytes` may stay (ticket: the stream's claim on this stay); false when the
  // budget is spent and it must leave memory now.
  bool admit(std::weak_ptr<MemoryBroker::Stream> s, std::size_t bytes, std::uint64_t ticket, Clock::time_point now);
  // The streams (with their tickets) whose stay is over at `now`, oldest first.
  std::vector<std::pair<std::weak_ptr<MemoryBroker::Stream>, std::uint64_t>> due(Clock::time_point now);

  std::atomic<bool> trim_due{false};  // a log left memory since the allocator last gave pages back

 private:
  struct Stay {
    std::weak_ptr<MemoryBroker::Stream> stream;
    std::size_t bytes;
    std::uint64_t ticket;
    Clock::time_point until;
  };
  const std::size_t budget_;
  const std::chrono::milliseconds linger_;
  std::mutex mu_;
  std::deque<Stay> stays_;
  std::size_t bytes_ = 0;
};

struct MemoryBroker::Stream : std::enable_shared_from_this<MemoryBroker::Stream> {
  mutable std::mutex mu;
  StreamStore* store = nullptr;  // where its changes are written, if anywhere
  StreamInfo info;
  std::string owner;
  std::string key;  // the Idempotency-Key bound to it, if any (guarded by the broker's mutex)
  EventLog log;
  bool removed = false;
  // What observers may read: the events and the end that are stored (all of them without a
  // store), so nothing an observer saw can be missing after a restart.
  std::uint64_t visible = 0;
  bool ended = false;
  bool held_back = false;              // visible moves only through MemoryBroker::make_visible (stored elsewhere)
  bool on_disk = false;                // the log left memory (ended, all stored): cursors read it from the store
  LingeringLogs* lingering = nullptr;  // the broker's, when its store reads logs back (they may leave memory)
  std::uint64_t linger_ticket = 0;     // the latest stay granted by `lingering`
  bool usage_dirty = false;            // usage changed since the store last got the record
  std::vector<std::weak_ptr<Waker>> waiters;

  // Waiting cursors of one executor (io thread), woken by one posted handler.
  struct WakeBatch {
    boost::asio::any_io_executor executor;
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

  // True when the log may leave memory: it ended, the store holds all of it and nobody reads it.
  bool idle_locked() const {
    return !on_disk && lingering != nullptr && !removed && ended && info.observers == 0 && visible >= log.size();
  }

  // Once idle, the log lingers in memory or, past the budget, leaves it; call with mu held.
  void evict_if_idle_locked() {
    if (!idle_locked()) return;
    if (lingering->admit(weak_from_this(), log.bytes(), ++linger_ticket, LingeringLogs::Clock::now())) return;
    drop_log_locked();
  }

  // The log leaves memory (its readers read it from the store); call with mu held, when idle.
  void drop_log_locked() {
    log.clear();
    on_disk = true;
    lingering->trim_due.store(true, std::memory_order_relaxed);
  }

  // Posts one handler per executor that wakes its cursors.
  static void wake(WakeList list) {
    for (auto& b : list) {
      boost::asio::post(b.executor, [wakers = std::move(b.wakers)] {
        for (const auto& w : wakers) {
          if (auto k = w.lock()) k->fire();
        }
      });
    }
  }
};

// A cursor on `s`'s log in memory from position `after`, woken on `ex`. `s` counts it among its
// observers already (MemoryBroker::open).
std::unique_ptr<Cursor> make_memory_cursor(std::shared_ptr<MemoryBroker::Stream> s, std::uint64_t after,
                                           const boost::asio::any_io_executor& ex,
                                           std::atomic<std::size_t>& open_cursors);
// A cursor on `s`'s log that left memory, read through its store on `disk`. `s` counts it among
// its observers already.
std::unique_ptr<Cursor> make_stored_cursor(std::shared_ptr<MemoryBroker::Stream> s, std::uint64_t after,
                                           boost::asio::any_io_executor disk, std::atomic<std::size_t>& open_cursors);

}  // namespace spool
