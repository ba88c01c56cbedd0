// The store's segment files on disk: naming, reading at an offset, appending, and the start-up
// scan that finds a torn tail (truncated, logged) or damage (a clear error naming the file).
#pragma once

#include "core/result.hpp"
#include "store/log_format.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace spool {

// A segment open for reading. Readers share it; a segment unlinked meanwhile stays readable.
class SegmentFile {
 public:
  SegmentFile(std::uint32_t number, int fd, std::string path) : number_(number), fd_(fd), path_(std::move(path)) {}
  ~SegmentFile();
  SegmentFile(const SegmentFile&) = delete;
  SegmentFile& operator=(const SegmentFile&) = delete;

  std::uint32_t number() const { return number_; }
  const std::string& path() const { return path_; }
  // Reads exactly `n` bytes at `offset` into `out`; an error naming the file otherwise.
  Status read(std::uint64_t offset, std::size_t n, std::string& out) const;
  // Its size in bytes now (0 when it cannot be read).
  std::uint64_t size() const;

 private:
  std::uint32_t number_;
  int fd_;
  std::string path_;
};

// The segment being appended to (one writer thread).
class ActiveSegment {
 public:
  ~ActiveSegment();
  ActiveSegment(const ActiveSegment&) = delete;
  ActiveSegment& operator=(const ActiveSegment&) = delete;

  // Creates segment `number` at `path` with its header.
  static Result<std::unique_ptr<ActiveSegment>> create(std::uint32_t number, std::string path);
  // Opens an existing segment to append at `size` (a torn tail beyond it is cut off).
  static Result<std::unique_ptr<ActiveSegment>> reopen(std::uint32_t number, std::string path, std::uint64_t size);

  std::uint32_t number() const { return number_; }
  std::uint64_t size() const { return size_; }
  // Appends `bytes` with one write (retried while partial); on failure the segment's size is
  // unchanged (a partial write is cut off again).
  Status append(std::string_view bytes);
  // fdatasync.
  Status sync();

 private:
  ActiveSegment(std::uint32_t number, int fd, std::string path, std::uint64_t size)
      : number_(number), fd_(fd), path_(std::move(path)), size_(size) {}
  std::uint32_t number_;
  int fd_;
  std::string path_;
  std::uint64_t size_;
};

// File name of segment `number` in `dir` (zero-padded, so names sort as numbers).
std::string segment_path(const std::string& dir, std::uint32_t number);
// Numbers of the segments in `dir`, ascending; an error naming any other file found there.
Result<std::vector<std::uint32_t>> list_segments(const std::string& dir);
// Opens segment `number` for reading, checking its header.
Result<std::shared_ptr<SegmentFile>> open_segment(const std::string& dir, std::uint32_t number);

// How a scan ended.
struct ScanEnd {
  std::uint64_t end = 0;         // offset after the last whole record
  std::uint64_t torn_bytes = 0;  // bytes after it that were not a whole record (last segment only)
};

// Reads the records of segment `number` from `from` (0: its first record) to its end, calling
// `on(record, offset)` for each. In the last segment a bad or partial record ends the scan as a
// torn tail; anywhere else it is damage, an error naming the file and offset.
Result<ScanEnd> scan_segment(const std::string& dir, std::uint32_t number, std::uint64_t from, bool last,
                             const std::function<void(const logfmt::Record&, std::uint64_t)>& on);

}  // namespace spool
