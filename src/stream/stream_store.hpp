// What keeps streams across a restart, as the memory broker writes to it: the interface below
// the broker (the durable store implements it; the broker never knows which).
#pragma once

#include "core/result.hpp"
#include "stream/stream_info.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spool {

// The error message of a stream that was running when its server stopped.
inline constexpr std::string_view kInterruptedByRestart = "interrupted by restart";

// One stream as stored: its record and its log.
struct StoredStream {
  StreamInfo info;
  std::string owner;
  std::string key;     // Idempotency-Key bound to it, if any
  std::string digest;  // of the request that bound the key
  std::vector<NewEvent> events;
};

// What a removed stream leaves behind for kIncarnationMemory: its id's incarnation, so the id's
// next stream gets the one after it (SPEC §1.2).
struct Tombstone {
  std::string id;
  std::uint32_t incarnation = 1;
  SysTime removed_at{};
};

// A stored log read back; one read at a time, on a thread that may block on the disk.
class StoredLog {
 public:
  virtual ~StoredLog() = default;
  // Appends to `out` the frames of the events after position `after`, whole events, stopping
  // once about `max_bytes` are there; returns how many (0: none is stored after `after`).
  virtual Result<std::uint64_t> read(std::uint64_t after, std::size_t max_bytes, std::string& out) = 0;
};

// Stream records and logs kept somewhere durable. Writes are queued: each may carry a callback
// that runs (on the store's thread) once it is stored. Every method may be called from any thread.
class StreamStore {
 public:
  // Runs after the write it was queued with is stored.
  using Written = std::function<void()>;

  virtual ~StreamStore() = default;
  // Stores a new stream's record (its incarnation too) and its owner.
  virtual void create(const StreamInfo& info, const std::string& owner, Written done) = 0;
  // What a write of events also changes in the stream's record.
  enum class Change {
    none,
    usage,   // its usage only
    record,  // more (status, timestamps, error): the whole record is stored, as update() does
  };
  // Stores events first_position .. first_position + count - 1 of stream `info.id`, given as
  // their SSE frames back to back, exactly as observers receive them (EventLog's format), and
  // with them, in the same write, what `change` says of `info`.
  virtual void append(const StreamInfo& info, std::uint64_t first_position, std::uint64_t count, std::string frames,
                      Change change, Written done) = 0;
  // Stores the record's status, timestamps, error message and usage.
  virtual void update(const StreamInfo& info, Written done) = 0;
  // Stores the Idempotency-Key bound to `id`.
  virtual void bind_key(const std::string& id, const std::string& key, const std::string& digest, Written done) = 0;
  // Forgets `id` and its log; with `tombstone` (of `id`), remembers it until kIncarnationMemory
  // after its removed_at, across restarts.
  virtual void remove(const std::string& id, std::optional<Tombstone> tombstone, Written done) = 0;
  // `done` runs once everything queued before it is stored.
  virtual void barrier(Written done) = 0;
  // Why the last write failed, while writes fail (they are retried), or nullopt.
  virtual std::optional<std::string> failure() const = 0;
  // True when open_log reads logs back, so the broker may drop a finished log from memory.
  virtual bool reads_back() const { return false; }
  // The stored log of `id` for reading (reads_back() stores only).
  virtual std::unique_ptr<StoredLog> open_log(const std::string& /*id*/) { return nullptr; }
};

}  // namespace spool
