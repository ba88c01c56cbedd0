// The single node's durable store (issue 5): stream records and event logs in SQLite (WAL), so
// they survive a restart, graceful or not. The only code that includes sqlite3.h.
//
// Writes are queued and applied by one writer thread in batches, one transaction per batch: a
// busy server pays one commit for many events. Each queued write may carry a callback, run on
// the writer thread once the write is committed (in WAL mode with synchronous=NORMAL a commit
// survives the process being killed; an fsync per commit, for power loss, is `sync = full`).
#pragma once

#include "core/result.hpp"
#include "stream/stream_store.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace spool {

// Settings of the durable store.
struct DurableStoreOptions {
  std::string dir;          // created if missing
  bool fsync_each = false;  // fsync every commit (survives power loss), not only process death
  bool lock = true;         // take the directory's LOCK (false: its holder reads the file, to migrate)
};

// Stream records and logs on disk. Every method may be called from any thread.
class DurableStore final : public StreamStore {
 public:
  // Opens (creating) `opts.dir`/spool.db; an error that names the directory and the reason when
  // it cannot be created or written, or the file is not a Spool database or is corrupt.
  static Result<std::unique_ptr<DurableStore>> open(const DurableStoreOptions& opts);
  ~DurableStore() override;
  DurableStore(const DurableStore&) = delete;
  DurableStore& operator=(const DurableStore&) = delete;

  // Every stored stream with its log, oldest first (start-up recovery; call before writing).
  Result<std::vector<StoredStream>> load_all();

  // StreamStore: a write's `done` runs on the writer thread once its transaction is committed.
  void create(const StreamInfo& info, const std::string& owner, Written done) override;
  void append(const std::string& id, std::uint64_t first_position, std::uint64_t count, std::string frames,
              const StreamInfo* record, Written done) override;
  void update(const StreamInfo& info, Written done) override;
  void bind_key(const std::string& id, const std::string& key, const std::string& digest, Written done) override;
  void remove(const std::string& id, Written done) override;
  void barrier(Written done) override;

  // Writes what is queued, then stops the writer thread. Later writes are dropped.
  void close();

  // Why the last write failed, while writes fail (they are retried), or nullopt.
  std::optional<std::string> failure() const override;

  // Transactions committed so far (for tests and metrics).
  std::uint64_t commits() const;

  struct Impl;

 private:
  explicit DurableStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace spool
