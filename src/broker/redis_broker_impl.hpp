// The Redis broker's state, in one place; its behaviour is spread over files of one concern each:
//   redis_broker_impl.cpp  connections kept up (reconnects, backoff), control messages, the loops
//   redis_flusher.cpp      the write path: writers' outboxes sent in batches, flush()
//   redis_reader.cpp       copies of other instances' streams, followed by one XREAD
//   redis_lease.cpp        leases renewed, cancels checked, streams of lost instances ended
//   redis_sweep.cpp        idle copies dropped, indexes pruned of gone streams
#pragma once

#include "broker/memory_broker.hpp"
#include "broker/redis_broker.hpp"
#include "broker/redis_flusher.hpp"
#include "broker/redis_keys.hpp"
#include "broker/redis_scripts.hpp"
#include "core/signal.hpp"

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

namespace spool {

struct RedisBroker::Impl : std::enable_shared_from_this<Impl> {
  // Connections are made by start(); `opts.instance` is generated when empty.
  Impl(boost::asio::any_io_executor e, RedisBrokerOptions o);

  static constexpr std::chrono::milliseconds kFirstBackoff{100}, kLongestBackoff{2000};

  boost::asio::any_io_executor ex;
  RedisBrokerOptions opts;
  RedisKeys keys;
  RedisScripts scripts;  // loaded on `cmd`
  MemoryBroker mirror;   // local copies: streams run here and streams observed here
  std::shared_ptr<RedisConnection> cmd, reader, sub;
  Signal flush_wake, read_wake;            // there is something to write / to read
  Signal cmd_lost, reader_lost, sub_lost;  // that connection failed: reconnect it
  // Wakes every loop for good (shutdown); thread-safe.
  void close_signals() {
    for (Signal* s : {&flush_wake, &read_wake, &cmd_lost, &reader_lost, &sub_lost}) s->close();
  }
  std::atomic<bool> stopping{false};

  // One stream this instance runs.
  struct Owned {
    std::shared_ptr<StreamWriter> mirror;  // the local copy's writer
    std::uint64_t position = 0;            // events published so far
    RedisOutbox out;
    bool terminal = false;  // its terminal status is queued (or stored)
    std::deque<FlushWaiter> waiters;
  };
  // One stream another instance runs that has observers here.
  struct Watched {
    std::shared_ptr<StreamWriter> mirror;
    std::uint64_t position = 0;     // last event copied
    std::uint32_t incarnation = 1;  // of the stream copied
    bool loaded = false;            // its log so far is copied; the reader takes over
    bool terminal = false;
    int idle_sweeps = 0;  // sweeps that found no observers
  };
  mutable std::mutex mu;
  std::unordered_map<std::string, Owned> owned;
  std::unordered_map<std::string, Watched> watched;
  std::function<void(const std::string&)> on_cancel;
  // Streams whose count of open cursors here (the mirror's) Redis has not seen yet.
  std::unordered_set<std::string> observed_dirty;
  std::vector<std::pair<std::string, std::string>> unanswered_creates;  // (id, owner) whose create got no reply
  std::string last_failure;  // why the command connection is down (under mu), for /health
  std::atomic<std::int64_t> reader_client_id{-1};
  // When the command connection last came up (steady clock, ms): leases that ran out while this
  // instance could not see Redis are not swept until their owners had a lease period to renew.
  std::atomic<std::int64_t> cmd_up_since{0};
  std::unordered_map<std::string, std::int64_t> last_prune;  // index key → when it was last pruned (steady ms)

  // Wall clock, ms since the epoch.
  static std::int64_t now_ms();
  // Steady clock, ms.
  static std::int64_t steady_ms();
  // "Stream with message_id <id> not found".
  static Error not_found(const std::string& id);
  // How long a terminal stream is kept in Redis (0: until deleted).
  std::chrono::milliseconds expire() const { return opts.stream_expiration; }

  // --- redis_broker_impl.cpp

  // Runs a background loop; one that ends by an exception is logged and started again a second later.
  void spawn_loop(const std::function<boost::asio::awaitable<void>()>& make, const std::string& what);
  // Wakes the flusher; wake-ups before it runs coalesce into one.
  void kick_flush() { flush_wake.notify(); }
  // Wakes the reader, and unblocks its XREAD so it re-reads the streams it follows.
  void kick_reader();
  // A cursor on `id` opened or closed here (after the mirror counted it).
  void observer_change(const std::string& id);
  // (Re)connects the command connection: scripts, abandoned creates, this instance's lease. One
  // that cannot be set up (Redis still loading, say) is closed, so it is retried and never used half set up.
  boost::asio::awaitable<Status> connect_cmd();
  // (Re)connects the reader's connection and notes its client id.
  boost::asio::awaitable<Status> connect_reader();
  // (Re)connects the pub/sub connection, then checks for cancels it missed.
  boost::asio::awaitable<Status> connect_sub();
  // Keeps `conn` connected: waits until it fails (`lost`), then reconnects with backoff.
  boost::asio::awaitable<void> keep_connected(std::shared_ptr<RedisConnection> conn,
                                              boost::asio::awaitable<Status> (Impl::*connect)(), Signal& lost);
  // Waits `backoff`, then doubles it up to kLongestBackoff.
  boost::asio::awaitable<void> back_off(std::chrono::milliseconds& backoff);
  // A "cancel <id>" or "delete <id>" from the control channel.
  void on_control(const RedisValue& v);

  // --- redis_flusher.cpp

  // Queues `f(owned stream)` for stream `id` (nothing when it is not this instance's any more) and wakes the flusher.
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
  // The writer of a stream created here, whose local copy is `mirror`.
  std::shared_ptr<StreamWriter> make_writer(const std::string& id, std::shared_ptr<StreamWriter> mirror);
  // Resumes `w` once `id`'s outbox is stored (at once when empty; failed when Redis is down).
  void park_flush(const std::string& id, FlushWaiter w);
  // Sends every owned stream's outbox and the observer counts to Redis, in pipelined batches, until stopped.
  boost::asio::awaitable<void> flusher();

  // --- redis_reader.cpp

  // Makes a local copy of another instance's stream (or a finished one of ours whose copy was
  // dropped): its log so far, then the reader follows it. not_found when Redis has no such stream.
  boost::asio::awaitable<Status> load_copy(const std::string& id);
  // One blocking XREAD over every followed stream at a time, until stopped.
  boost::asio::awaitable<void> reader_loop();

  // --- redis_lease.cpp

  // Renews this instance's leases and ends streams whose owner's lease ran out, until stopped.
  boost::asio::awaitable<void> lease_loop();
  // Cancels the streams this instance runs whose record says a cancel was requested.
  boost::asio::awaitable<void> check_cancels();

  // --- redis_sweep.cpp

  // Drops copies of other instances' streams nobody here observes any more, until stopped.
  boost::asio::awaitable<void> mirror_sweep();
  // Drops the entries of gone streams (expired, deleted) from the index `key`, at most once every
  // 10 s per index.
  boost::asio::awaitable<Status> prune(std::string key);

 private:
  struct Settled;
  boost::asio::awaitable<Status> connect_cmd_once();
  boost::asio::awaitable<Status> abandon_unanswered_creates();
  RedisBatch take_batch(Settled& settled);
  void on_append_reply(const std::string& id, const RedisOutbox::Taken& t, const RedisValue& v, Settled& s);
  boost::asio::awaitable<void> settle(Settled s, std::chrono::milliseconds& backoff);
  void fail_waiters(const Error& e);
  void apply_entries(const std::string& id, const std::vector<RedisValue>& entries);
  boost::asio::awaitable<void> renew_leases(std::int64_t now);
  boost::asio::awaitable<void> end_lost_streams(std::int64_t now);
  boost::asio::awaitable<void> drop_vanished_copies();
  void drop_idle_copies();
};

}  // namespace spool
