// What the log store keeps in memory: per stream, where its records are (never their contents),
// and per segment, how many of its bytes still belong to a stream. Replay at start-up and the
// writer apply records through the same function; a checkpoint saves the whole index.
#pragma once

#include "core/result.hpp"
#include "store/log_format.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace spool {

// Where one record is.
struct RecordLoc {
  std::uint32_t segment = 0;
  std::uint32_t size = 0;  // 0: no such record
  std::uint64_t offset = 0;
};

// One stream as the index knows it.
struct IndexEntry {
  std::uint64_t serial = 0;
  std::string id;
  std::uint64_t events = 0;  // the last stored position
  RecordLoc create, update, key, table;
  RecordLoc progress;                   // its latest progress record, when written after its latest update
  std::vector<logfmt::Extent> extents;  // its events records, until a table record holds them
  std::vector<std::pair<std::uint32_t, std::uint64_t>> footprint;  // bytes of its records, per segment
};

// The index of every stored stream.
class LogIndex {
 public:
  // Applies `r`, found at `offset` in `segment` (replayed or just written). A copy of a stream's
  // record written again by compaction takes the place of the original: a create of a serial
  // already known under the same id moves its create record, events starting where one of its
  // extents starts replace that extent.
  void apply(const logfmt::Record& r, std::uint32_t segment, std::uint64_t offset);
  // Stops counting the bytes of stream `serial` in `segment` (compaction copied what of it lives).
  void forget_segment(std::uint64_t serial, std::uint32_t segment);
  // Streams with bytes counted in `segment`.
  std::vector<std::uint64_t> serials_in(std::uint32_t segment) const;

  const IndexEntry* find(const std::string& id) const;
  const IndexEntry* find(std::uint64_t serial) const;
  std::size_t size() const { return by_serial_.size(); }
  // Every entry, in no particular order.
  const std::unordered_map<std::uint64_t, IndexEntry>& entries() const { return by_serial_; }
  // A serial no stream has had.
  std::uint64_t take_serial() { return next_serial_++; }
  // Bytes of `segment` that belong to a stream still stored.
  std::uint64_t live_bytes(std::uint32_t segment) const;
  // Segments with records of a stored stream.
  std::vector<std::uint32_t> live_segments() const;

  // Ids removed with a tombstone (their last incarnation, and when), until a create of the id.
  struct Tomb {
    std::uint32_t incarnation = 1;
    std::int64_t removed_us = 0;
  };
  const std::unordered_map<std::string, Tomb>& tombstones() const { return tombstones_; }
  // Forgets the tombstones removed before `before_us`, then the oldest past `most`.
  void prune_tombstones(std::int64_t before_us, std::size_t most);

  // The index as a checkpoint file's bytes, covering the log up to (segment, offset).
  std::string checkpoint(std::uint32_t segment, std::uint64_t offset) const;
  // Reads a checkpoint; the position it covers up to, or an error saying what is wrong with it.
  Result<std::pair<std::uint32_t, std::uint64_t>> restore(std::string_view bytes);

 private:
  void add_bytes(IndexEntry& e, std::uint32_t segment, std::uint64_t n);
  void erase(std::uint64_t serial);
  bool restore_tombstones(logfmt::Reader& in);

  std::unordered_map<std::uint64_t, IndexEntry> by_serial_;
  std::unordered_map<std::string_view, std::uint64_t> serial_of_;  // keys view their entry's id
  std::map<std::uint32_t, std::uint64_t> live_;                    // segment → bytes of stored streams' records
  std::uint64_t next_serial_ = 1;
  std::unordered_map<std::string, Tomb> tombstones_;
};

}  // namespace spool
