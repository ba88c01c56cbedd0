// The in-process broker (§4.3): one instance, everything in memory.
#pragma once

#include "broker/broker.hpp"
#include "broker/tombstones.hpp"
#include "stream/stream_store.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <mutex>
#include <string_view>
#include <unordered_map>

namespace spool {

// Settings of the memory broker.
class LingeringLogs;

struct MemoryBrokerOptions {
  std::chrono::seconds stream_expiration{3600};  // 0 = keep terminal streams until deleted
  std::chrono::milliseconds sweep_interval{1000};
  // Where records and logs are also written (not owned; must outlive the broker). With a store,
  // observers see an event once it is committed, and create, remove, flush and a cancel answer
  // once their changes are.
  StreamStore* store = nullptr;
  // With a store that reads logs back: a finished log nobody reads stays in memory this long
  // (its observer often comes a moment later), while such logs take at most lingering_bytes
  // (linger 0: it leaves at once).
  std::chrono::milliseconds linger{1000};
  std::size_t lingering_bytes = std::size_t{16} << 20;
  // A removed id's incarnation is remembered this long, for at most this many ids at once (0: none,
  // as in the redis broker's local copies, whose incarnations Redis gives).
  std::chrono::milliseconds incarnation_memory{kIncarnationMemory};
  std::size_t most_tombstones = kMostTombstones;
};

// Streams held in this process; logs are shared, serialized once, read in place by observers.
class MemoryBroker final : public Broker {
 public:
  // `ex` runs the expiry sweep.
  MemoryBroker(const boost::asio::any_io_executor& ex, MemoryBrokerOptions opts);
  ~MemoryBroker() override;

  boost::asio::awaitable<Result<std::shared_ptr<StreamWriter>>> create(StreamSpec spec) override;
  // create(), but observers read what is published only once make_visible() says it is stored
  // (by a broker that stores it elsewhere: Redis).
  boost::asio::awaitable<Result<std::shared_ptr<StreamWriter>>> create_held(StreamSpec spec);
  // Lets the observers of a create_held() stream read its events up to `upto`, and its end when `ended`.
  void make_visible(const std::string& id, std::uint64_t upto, bool ended);
  boost::asio::awaitable<Result<StreamInfo>> info(std::string id) override;
  boost::asio::awaitable<Result<std::unique_ptr<Cursor>>> open(std::string id, std::uint64_t after,
                                                               std::uint32_t incarnation,
                                                               boost::asio::any_io_executor ex) override;
  boost::asio::awaitable<Status> remove(std::string id, Removal how) override;
  boost::asio::awaitable<Result<std::string>> owner(std::string id) override;
  boost::asio::awaitable<Result<HeldStreams>> held(std::string owner, HeldStreams limits) override;
  boost::asio::awaitable<Result<StreamPage>> list(ListQuery q) override;
  boost::asio::awaitable<Result<std::optional<KeyedJob>>> find_key(std::string key) override;
  boost::asio::awaitable<Result<std::optional<KeyedJob>>> claim_key(std::string key, KeyedJob job) override;
  // With a store: returns once everything written for `id` so far is committed.
  boost::asio::awaitable<Status> flush(std::string id) override;
  std::vector<std::pair<StreamStatus, std::size_t>> counts() const override;
  std::size_t observers() const override;
  // Streams whose log is in memory (the others' are read from the store).
  std::size_t logs_in_memory() const;
  int local_observers(const std::string& id) const override { return observers_of(id); }
  // The store's write failure, while it lasts.
  std::optional<std::string> unready_reason() const override {
    return opts_.store != nullptr ? opts_.store->failure() : std::nullopt;
  }
  // Stops the expiry sweep; call on the sweep executor's thread, or with it not running.
  void stop() override;

  // Open cursors on `id` (0 when there is no such stream).
  int observers_of(const std::string& id) const;
  // Removes `id` unless a cursor is open on it; true when it was removed.
  bool remove_if_unobserved(const std::string& id);

  // Loads the streams and tombstones a store kept (call before serving). Streams that were still
  // running end with `error` "interrupted by restart" and its `error` event, written back to the
  // store before this returns. Returns how many were interrupted.
  std::size_t restore(std::vector<StoredStream> streams, std::vector<Tombstone> tombstones = {});

  // Removes terminal streams whose expiration has passed (leaving tombstones) and forgets the
  // tombstones older than incarnation_memory; returns how many streams.
  std::size_t sweep_expired(SysTime now);
  // Removed ids whose incarnation is remembered.
  std::size_t tombstones() const;

  struct Stream;  // a record with its log and waiting cursors

 private:
  void schedule_sweep();
  boost::asio::awaitable<Result<std::shared_ptr<StreamWriter>>> create_stream(StreamSpec spec, bool held_back);
  std::shared_ptr<Stream> find(const std::string& id) const;
  // Forgets the Idempotency-Key bound to `s` (being removed); call with mu_ held.
  void drop_key_locked(const Stream& s);
  // Counts `owner`'s stream in or out of held_by_owner_; call with mu_ held.
  void count_held_locked(const std::string& owner, bool in);

  MemoryBrokerOptions opts_;
  std::unique_ptr<boost::asio::steady_timer> sweep_timer_;  // reset by stop()
  // Reads logs that left memory (a store that reads back), off the network threads.
  std::unique_ptr<boost::asio::thread_pool> disk_;
  std::unique_ptr<LingeringLogs> lingering_;  // with disk_
  // Drops from memory the lingering logs whose stay is over.
  void drop_lingering();
  mutable std::mutex mu_;
  // Keyed by a view of the stream's own id (which never changes): the id is stored once.
  std::unordered_map<std::string_view, std::shared_ptr<Stream>> streams_;
  std::unordered_map<std::string, KeyedJob> keys_;              // Idempotency-Key → job, while its stream exists
  std::unordered_map<std::string, std::size_t> held_by_owner_;  // owners with streams here
  Tombstones tombstones_;
  std::atomic<std::size_t> open_cursors_{0};
};

}  // namespace spool
