// The single node's store as a log (issue 14): append-only segment files of checksummed records
// (log_format.hpp), one write per batch from one writer thread; in memory only an index of where
// each stream's records are (log_index.hpp), saved as a checkpoint so a start reads the index and
// the log written after it, never every log. Finished streams are read back from disk.
#pragma once

#include "core/result.hpp"
#include "stream/stream_store.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace spool {

// Settings of the log store.
struct LogStoreOptions {
  std::string dir;          // created if missing; holds LOCK, index and segments/
  bool fsync_each = false;  // fdatasync every batch (survives power loss), not only process death
  std::uint64_t segment_bytes = std::uint64_t{64} << 20;     // a segment is closed past this size
  std::uint64_t checkpoint_bytes = std::uint64_t{64} << 20;  // log written between index checkpoints
  std::chrono::milliseconds compaction_interval{1000};       // at most one segment compacted per interval
};

// Stream records and logs in segment files. Every method may be called from any thread.
class LogStore final : public StreamStore {
 public:
  // Opens (creating) `opts.dir`: reads the index checkpoint and replays the log after it,
  // cutting off a torn tail (logged). An error naming the file when the directory cannot be
  // used, holds something that is not Spool's, or a segment is damaged before its end.
  static Result<std::unique_ptr<LogStore>> open(const LogStoreOptions& opts);
  ~LogStore() override;
  LogStore(const LogStore&) = delete;
  LogStore& operator=(const LogStore&) = delete;

  // Every stored stream's record, oldest first, with its event count in info.events and no
  // events (they stay on disk: open_log reads them). Call before writing.
  Result<std::vector<StoredStream>> load_all();
  // The ids removed with a tombstone (and not created again), as stored.
  std::vector<Tombstone> tombstones() const;

  // StreamStore: a write's `done` runs on the writer thread once it is written (and synced with
  // fsync_each).
  void create(const StreamInfo& info, const std::string& owner, Written done) override;
  void append(const StreamInfo& info, std::uint64_t first_position, std::uint64_t count, std::string frames,
              Change change, Written done) override;
  void update(const StreamInfo& info, Written done) override;
  void bind_key(const std::string& id, const std::string& key, const std::string& digest, Written done) override;
  void remove(const std::string& id, std::optional<Tombstone> tombstone, Written done) override;
  void barrier(Written done) override;
  std::optional<std::string> failure() const override;
  bool reads_back() const override { return true; }
  std::unique_ptr<StoredLog> open_log(const std::string& id) override;

  // Writes what is queued and a checkpoint, then stops the writer thread. Later writes are dropped.
  void close();
  // Batches written so far (for tests and metrics).
  std::uint64_t commits() const;
  // Segment files on disk now.
  std::size_t segments() const;

  struct Impl;

 private:
  explicit LogStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace spool
