// The Redis broker (§4.5): several instances share every stream through one Redis (≥ 6).
//
// Keys (P = the configured prefix; {id} is a hash tag, so a stream's keys share a cluster slot):
//   P{id}:meta   hash: status, timestamps (ms since the epoch), model, usage, events, the owner
//                instance, ...
//   P{id}:log    stream: one entry per event, entry id 0-N for event N, fields type and data
//   P{id}:observers  hash: instance → its open observers of the stream
//   Prunning     sorted set: id → lease deadline (ms) of every running job
//   Pcreated     sorted set: id → created_at (ms), the index of GET /v1/messages/async
//   Pinstances   sorted set: instance → lease deadline (ms); observer counts of instances past
//                theirs are not counted
//   Pidempotency:<owner>\n<key>  string "<digest> <id>", for 24 h: the job an Idempotency-Key started
//   Pcontrol     pub/sub channel: "cancel <id>" and "delete <id>"; a cancel is also stored in the
//                stream's meta (cancel_requested), where the running instance checks every lease/3
//
// Each instance keeps a local mirror (a MemoryBroker) of the streams it runs or has observers on:
// its own jobs' events go to the mirror at once and to Redis in pipelined batches (one Lua call
// per stream per batch, retried in order after a reconnect, never lost while the process lives);
// other instances' streams are read by one blocking XREAD per instance over all of them, so every
// observer of a stream on an instance shares one reader. Frames are built from (type, data,
// position) on every instance, so observers anywhere get the same bytes.
#pragma once

#include "broker/broker.hpp"
#include "broker/redis_connection.hpp"

#include <functional>
#include <memory>

namespace spool {

// Settings of the Redis broker.
struct RedisBrokerOptions {
  RedisEndpoint endpoint;
  std::string prefix = "spool:";
  std::chrono::seconds stream_expiration{3600};  // 0 = keep terminal streams until deleted
  std::chrono::milliseconds lease{10000};        // a dead instance's jobs turn `error` within about this
  std::chrono::milliseconds connect_timeout{2000};
  std::string instance;  // this instance's id (empty: generated)
};

// Streams in Redis, mirrored locally where they run or are watched.
class RedisBroker final : public Broker {
 public:
  // Background work (flushing, reading, leases, reconnects) runs on `ex`.
  RedisBroker(boost::asio::any_io_executor ex, RedisBrokerOptions opts);
  // Destroy only once nothing runs `ex` any more (threads joined, or the caller's own thread).
  ~RedisBroker() override;

  // Connects and starts the background work; broker_unavailable when Redis cannot be reached.
  boost::asio::awaitable<Status> start();

  boost::asio::awaitable<Result<std::shared_ptr<StreamWriter>>> create(StreamSpec spec) override;
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
  boost::asio::awaitable<Status> flush(std::string id) override;
  boost::asio::awaitable<Result<bool>> request_cancel(std::string id) override;
  void on_remote_cancel(const std::function<void(const std::string&)>& handler) override;
  // Streams mirrored here (run or watched by this instance), by status.
  std::vector<std::pair<StreamStatus, std::size_t>> counts() const override;
  // Observers on this instance.
  std::size_t observers() const override;
  // Observers of `id` on this instance.
  int local_observers(const std::string& id) const override;
  // While the connection to Redis is down.
  std::optional<std::string> unready_reason() const override;
  void stop() override;

  // This instance's id (in each of its streams' `instance` field).
  const std::string& instance() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace spool
