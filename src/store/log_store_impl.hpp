// The log store's state, shared by its files: log_store.cpp (the public operations and reads)
// and log_store_writer.cpp (start-up replay and the writer thread).
#pragma once

#include "store/log_format.hpp"
#include "store/log_index.hpp"
#include "store/log_store.hpp"
#include "store/segment_files.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace spool {
namespace logstore {

// Timestamps are stored as microseconds since the epoch, as exact as /status shows them.
inline std::int64_t to_us(SysTime t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
inline SysTime from_us(std::int64_t us) {
  return SysTime(std::chrono::duration_cast<SysTime::duration>(std::chrono::microseconds(us)));
}

// One queued write.
struct Op {
  enum class Kind { create, append, update, key, remove, barrier };
  Kind kind = Kind::barrier;
  std::string id;
  logfmt::Create create;  // create (serial given when written)
  logfmt::Update update;  // create (its first record), update, append when with_update
  logfmt::Remove remove;  // remove (serial given when written), with its tombstone if any
  bool with_update = false;
  std::optional<Usage> usage;  // append: the usage it changes, when that is all it changes
  std::uint64_t first = 0, count = 0;
  std::string frames;  // append: positions first .. first + count - 1
  std::string key, digest;
  StreamStore::Written done;
};

// An error about the data directory `dir`.
inline Error dir_error(const std::string& dir, const std::string& what) {
  return make_error(Errc::internal, "data directory " + dir + ": " + what);
}

}  // namespace logstore

struct LogStore::Impl {
  LogStoreOptions opts;
  std::string seg_dir;
  int lock_fd = -1;

  std::mutex mu;  // the queue and the writer's state
  std::condition_variable wake;
  std::vector<logstore::Op> queue;
  bool writer_waits = false;  // the writer sleeps until something is queued
  bool closing = false;
  std::optional<std::string> failing;
  std::thread writer;
  std::atomic<std::uint64_t> commits{0};

  mutable std::mutex index_mu;  // the index and the readable files (the writer changes them)
  LogIndex index;
  std::map<std::uint32_t, std::shared_ptr<SegmentFile>> files;

  // The writer thread's own.
  std::unique_ptr<ActiveSegment> active;
  std::string encoded;  // the batch being written (its capacity kept from batch to batch)
  std::uint64_t since_checkpoint = 0;

  ~Impl();
  // Writes what is queued and a checkpoint, then ends the writer thread.
  void stop();
  std::string checkpoint_path() const;

  // Locks the directory, replays, starts the writer.
  Status open();
  // Rebuilds the index from the checkpoint and the log after it.
  Status replay();
  void push(logstore::Op op);
  void write_loop();
  // Writes `batch`, retrying while writes fail; false when given up at shutdown.
  bool write_batch(std::vector<logstore::Op>& batch);
  // Puts the batch's records in `encoded`; `finished` gets the serials that reached a terminal status.
  void encode(std::vector<logstore::Op>& batch, std::vector<std::uint64_t>& finished);
  // One write of whole records (rolling the segment first when full), then indexes them.
  Status write_and_apply(const std::string& bytes);
  void write_tables(const std::vector<std::uint64_t>& finished);
  Status write_checkpoint();
  void drop_dead_segments();
  // Copies forward the live records of the sealed segment with the least of its bytes live,
  // when that is under half, then deletes it (at most once per second; see log_compaction.cpp).
  void compact();
  // Appends to `out` copies of the records stream `serial` keeps in `segment`.
  Status copy_live_records(std::uint64_t serial, std::uint32_t segment, std::string& out);
  // Writes a new table for each of `serials` that has one, listing where its events are now.
  Status rewrite_tables(const std::vector<std::uint64_t>& serials);
  std::chrono::steady_clock::time_point last_compaction{};
  // The bytes of the record at `loc`.
  Result<std::string> read_record(const RecordLoc& loc) const;
  // The stored record of a stream (its create, update and key records).
  Result<StoredStream> load(const IndexEntry& e) const;
};

}  // namespace spool
