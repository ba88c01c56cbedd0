// The single node's durable store (issue 5): stream records and event logs in SQLite (WAL), so
// they survive a restart, graceful or not. The only code that includes sqlite3.h.
//
// Writes are queued and applied by one writer thread in batches, one transaction per batch: a
// busy server pays one commit for many events. Each queued write may carry a callback, run on
// the writer thread once the write is committed (in WAL mode with synchronous=NORMAL a commit
// survives the process being killed; an fsync per commit, for power loss, is `sync = full`).
#pragma once

#include "core/result.hpp"
#include "stream/stream_info.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
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

// Settings of the durable store.
struct DurableStoreOptions {
  std::string dir;          // created if missing
  bool fsync_each = false;  // fsync every commit (survives power loss), not only process death
};

// Stream records and logs on disk. Every method may be called from any thread.
class DurableStore {
 public:
  // Runs on the writer thread after the write it was queued with is committed.
  using Written = std::function<void()>;

  // Opens (creating) `opts.dir`/spool.db; an error that names the directory and the reason when
  // it cannot be created or written, or the file is not a Spool database or is corrupt.
  static Result<std::unique_ptr<DurableStore>> open(const DurableStoreOptions& opts);
  ~DurableStore();
  DurableStore(const DurableStore&) = delete;
  DurableStore& operator=(const DurableStore&) = delete;

  // Every stored stream with its log, oldest first (start-up recovery; call before writing).
  Result<std::vector<StoredStream>> load_all();

  void create(const StreamInfo& info, const std::string& owner, Written done = {});
  // Stores events first_position, first_position + 1, ... of stream `id`.
  void append(const std::string& id, std::uint64_t first_position, std::span<const NewEvent> events, Written done = {});
  // Stores the record's status, timestamps, error message and usage.
  void update(const StreamInfo& info, Written done = {});
  void bind_key(const std::string& id, const std::string& key, const std::string& digest, Written done = {});
  void remove(const std::string& id, Written done = {});
  // `done` runs once everything queued before it is committed.
  void barrier(Written done);

  // Writes what is queued, then stops the writer thread. Later writes are dropped.
  void close();

  // Why the last write failed, while writes fail (they are retried), or nullopt.
  std::optional<std::string> failure() const;

  // Transactions committed so far (for tests and metrics).
  std::uint64_t commits() const;

  struct Impl;

 private:
  explicit DurableStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace spool
