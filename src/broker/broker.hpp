// The broker: where stream records and event logs live (memory for one instance, Redis for several).
#pragma once

#include "core/result.hpp"
#include "stream/stream_info.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace spool {

// What a new stream record starts with.
struct StreamSpec {
  std::string id;
  std::string model;
  int message_count = 0;
  bool thinking_enabled = false;
  std::string owner;  // the auth secret's identity that created it (for stream scoping)
  // Which use of the id it is; 0: the broker decides (the one after its tombstone's, else 1).
  std::uint32_t incarnation = 0;
};

// Whether a removal leaves a tombstone, so the id's next stream gets the next incarnation (an
// internal stream nobody can hold a cursor of, a synchronous reply's, need not).
enum class Removal { tombstone, forget };

// The job an Idempotency-Key started: the stream's id and the digest of the request body.
struct KeyedJob {
  std::string id;
  std::string digest;
};

// How long the redis broker remembers an Idempotency-Key (the memory broker: while its stream exists).
inline constexpr std::chrono::hours kIdempotencyWindow{24};
// (How long a removed id's incarnation is remembered, every broker and the durable store alike:
// kIncarnationMemory, stream/stream_info.hpp.)

// The refusal (conflict) of a cursor after event `after` of incarnation `wanted` of stream `id`,
// whose id names incarnation `current` now.
Error incarnation_conflict(const std::string& id, std::uint64_t after, std::uint32_t wanted, std::uint32_t current);

// Producer side of one stream, held by the job that runs it. Thread-safe and never blocks
// on observers: appending only stores the frames and wakes whoever waits.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  // Appends `events` in order, then moves to `status` if given (as set_status does), under one
  // lock and with one wakeup of the observers. Returns the position of the last event in the log.
  virtual std::uint64_t publish(std::span<const NewEvent> events, std::optional<StreamStatus> status = std::nullopt,
                                std::optional<std::string> error_message = std::nullopt) = 0;
  // publish() of one event.
  std::uint64_t append(std::string_view type, std::string_view json) {
    const NewEvent e{std::string(type), std::string(json)};
    return publish({&e, 1});
  }
  // Moves to `status`; a terminal status also stamps completed_at and releases observers.
  virtual void set_status(StreamStatus status, std::optional<std::string> error_message = std::nullopt) = 0;
  // Usage so far, for /status.
  virtual void set_usage(Usage usage) = 0;
  // Place in the engine's queue (1 = next), or nullopt once running.
  virtual void set_queue_position(std::optional<int> position) = 0;
};

// Which streams a list asks for: newest first (by created_at, then id, both descending).
struct ListQuery {
  std::optional<std::string> owner;    // only this owner's streams (stream scoping)
  std::vector<StreamStatus> statuses;  // only these (empty: any)
  std::size_t limit = 20;
  // Continue after this stream (the last one of the previous page): its created_at and id.
  std::optional<std::pair<SysTime, std::string>> after;
};

// One page of a list.
struct StreamPage {
  std::vector<StreamInfo> streams;
  bool has_more = false;
};

// True when `a` lists before `b` (newer first; ties by id, descending).
inline bool lists_before(const StreamInfo& a, const StreamInfo& b) {
  return a.created_at != b.created_at ? a.created_at > b.created_at : a.id > b.id;
}

// True when `info` belongs on a page of `q` (owner aside): its status is asked for and it comes
// after q.after.
bool matches(const ListQuery& q, const StreamInfo& info);

// What a cursor read.
struct ReadChunk {
  enum class Kind {
    data,         // buffers hold whole frames of `events` events
    end,          // nothing more will come: terminal and fully read, deleted, or aborted
    interrupted,  // interrupt() was called (the caller's ping is due)
  };
  Kind kind = Kind::end;
  std::span<const boost::asio::const_buffer> buffers;  // valid until the cursor's next call or destruction
  std::uint64_t events = 0;
};

// Observer side: reads one stream's log from a position, on one executor. Waiting costs no
// timer: a producer's append wakes the cursor directly.
class Cursor {
 public:
  virtual ~Cursor() = default;
  // Waits until there are events after the position (returns them and advances), the stream
  // ends, or interrupt() is called.
  virtual boost::asio::awaitable<ReadChunk> next() = 0;
  // Makes a pending (or the next) next() return `interrupted`. Call on the cursor's executor.
  virtual void interrupt() = 0;
  // Makes a pending or later next() return end. Call on the cursor's executor.
  virtual void abort() = 0;
  // True when, at open, the stream was already terminal with nothing after the position.
  virtual bool exhausted_at_open() const = 0;
};

// How many streams (running and finished) a broker holds.
struct HeldStreams {
  std::size_t total = 0;     // all of them
  std::size_t of_owner = 0;  // those of one owner
};

// Stream records and logs. Every method may be called from any network thread.
class Broker {
 public:
  virtual ~Broker() = default;
  // Creates a pending stream; invalid_request "Stream with this message_id already exists" if the id is taken.
  virtual boost::asio::awaitable<Result<std::shared_ptr<StreamWriter>>> create(StreamSpec spec) = 0;
  // The record of `id`, or not_found.
  virtual boost::asio::awaitable<Result<StreamInfo>> info(std::string id) = 0;
  // A cursor on `id` positioned after event `after` (0 = from the first) of incarnation
  // `incarnation` (0: whichever is current), or not_found; conflict (incarnation_conflict) when
  // `after` > 0 names another incarnation than the stream's.
  virtual boost::asio::awaitable<Result<std::unique_ptr<Cursor>>> open(std::string id, std::uint64_t after,
                                                                       std::uint32_t incarnation,
                                                                       boost::asio::any_io_executor ex) = 0;
  // Removes the record and log and ends every open cursor on it (leaving a tombstone as `how`
  // says); not_found if absent.
  virtual boost::asio::awaitable<Status> remove(std::string id, Removal how) = 0;
  // The streams `q` asks for, one page.
  virtual boost::asio::awaitable<Result<StreamPage>> list(ListQuery q) = 0;
  // How many streams are held, in all and of `owner`. Exact up to the limits given (a broker may
  // count streams that just expired above them, and then looks closer before answering).
  virtual boost::asio::awaitable<Result<HeldStreams>> held(std::string owner, HeldStreams limits) = 0;
  // Owner recorded at creation, or not_found.
  virtual boost::asio::awaitable<Result<std::string>> owner(std::string id) = 0;
  // The job `key` (an owner-qualified Idempotency-Key) started, if its stream still exists.
  virtual boost::asio::awaitable<Result<std::optional<KeyedJob>>> find_key(std::string key) = 0;
  // Binds `key` to `job` (whose stream exists) unless another stream that still exists holds it:
  // then returns that one and changes nothing. Atomic across every instance sharing the broker.
  virtual boost::asio::awaitable<Result<std::optional<KeyedJob>>> claim_key(std::string key, KeyedJob job) = 0;
  // Returns once everything written for `id` by this instance is visible to every instance
  // (immediately for a single-process broker); broker_unavailable if that cannot happen now.
  virtual boost::asio::awaitable<Status> flush(std::string id);
  // Asks the instance running `id` to cancel it; false when no other instance can run jobs
  // (a single-process broker), true once the request is sent.
  virtual boost::asio::awaitable<Result<bool>> request_cancel(std::string id);
  // `handler(id)` is called, from a broker thread, when another instance asks to cancel or
  // delete a stream this instance may be running.
  virtual void on_remote_cancel(const std::function<void(const std::string&)>& handler);
  // Counts of streams by status and of open observers, for /metrics.
  virtual std::vector<std::pair<StreamStatus, std::size_t>> counts() const = 0;
  // Open observers over all streams (cheap: called on every observe).
  virtual std::size_t observers() const = 0;
  // Open observers of `id` on this instance (cheap: called on every observe).
  virtual int local_observers(const std::string& id) const = 0;
  // Why the broker cannot serve now (for /health), or nullopt when it can.
  virtual std::optional<std::string> unready_reason() const { return std::nullopt; }
  // Stops background work (expiry); called once at shutdown.
  virtual void stop() = 0;
};

}  // namespace spool
