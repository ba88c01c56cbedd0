// The store's on-disk format: segment files of checksummed records (README "Restarts").
//
//   segment  = header record*
//   header   = "SPOOLLOG" u32 version u32 segment-number              (16 bytes, little-endian)
//   record   = u32 crc32c(length type body) u32 length u8 type body   (length = 1 + |body|)
//
// Every stream has a serial, given by its create record; the others name it by that number.
// An events record's body ends with its frames exactly as observers receive them, so a replay
// from disk is a read. Nothing in a segment changes once written.
#pragma once

#include "stream/stream_info.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace spool::logfmt {

inline constexpr std::string_view kMagic = "SPOOLLOG";
inline constexpr std::uint32_t kVersion = 1;
inline constexpr std::size_t kHeaderBytes = 16;
inline constexpr std::size_t kRecordHeaderBytes = 9;
// No record is longer (a length past it is damage, never an allocation).
inline constexpr std::size_t kMaxRecordBytes = std::size_t{32} << 20;

// progress: events that also change the stream's usage, and nothing else of its record (the
// usual case while a job streams: one record where events + update would take two).
enum class RecordType : std::uint8_t {
  create = 1,
  events = 2,
  update = 3,
  key = 4,
  remove = 5,
  table = 6,
  progress = 7
};

// A new stream. Its incarnation is a trailing field written only past the first (absent: 1).
struct Create {
  std::uint64_t serial = 0;
  std::string id, model, owner;
  std::int64_t message_count = 0;
  bool thinking = false;
  std::int64_t created_us = 0;
  std::uint32_t incarnation = 1;
};

// Events first .. first + count - 1 of a stream, as SSE frames (with the stream's usage after
// them: a progress record).
struct Events {
  std::uint64_t serial = 0;
  std::uint64_t first = 0;
  std::uint64_t count = 0;
  std::string_view frames;
  std::optional<Usage> usage;
};

// A stream's record after a change.
struct Update {
  std::uint64_t serial = 0;
  StreamStatus status = StreamStatus::pending;
  std::int64_t updated_us = 0;
  std::optional<std::int64_t> completed_us;
  std::optional<std::string> error_message;
  std::int64_t input_tokens = 0, output_tokens = 0;
};

// The Idempotency-Key bound to a stream.
struct Key {
  std::uint64_t serial = 0;
  std::string key, digest;
};

// A stream deleted or expired; with a tombstone (trailing fields, absent in older records), its
// id's incarnation is remembered from `removed_us` on.
struct Remove {
  std::uint64_t serial = 0;
  std::uint32_t incarnation = 0;  // 0: no tombstone
  std::int64_t removed_us = 0;
};

// Where an events record is: its segment, offset and size, and the events it holds.
struct Extent {
  std::uint32_t segment = 0;
  std::uint64_t offset = 0;
  std::uint32_t size = 0;
  std::uint64_t first = 0;
  std::uint64_t count = 0;
};

// A finished stream's extents, written once so memory need not hold them.
struct Table {
  std::uint64_t serial = 0;
  std::vector<Extent> extents;
};

// Field codecs shared by the record bodies and the checkpoint (little-endian; varints LEB128,
// signed ones zigzag).
void put_u32(std::string& out, std::uint32_t v);
std::uint32_t get_u32(std::string_view in);  // `in` holds 4 bytes at least
void put_varint(std::string& out, std::uint64_t v);
void put_signed(std::string& out, std::int64_t v);
void put_string(std::string& out, std::string_view s);

// Reads fields front to back; a read past the end fails (and the caller calls it malformed).
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool varint(std::uint64_t& v);
  bool signed_varint(std::int64_t& v);
  bool byte(std::uint8_t& b);
  bool string(std::string& s);
  std::string_view rest() const { return in_; }
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

// The 16-byte header of segment `number`.
std::string segment_header(std::uint32_t number);
// The segment number in `header`, or nullopt when it is not a segment of this version.
std::optional<std::uint32_t> parse_segment_header(std::string_view header);

// Appends one whole record to `out`.
void append(std::string& out, const Create& r);
void append(std::string& out, const Events& r);
// An events record whose frames are `parts` back to back (written without joining them first).
void append_events(std::string& out, std::uint64_t serial, std::uint64_t first, std::uint64_t count,
                   std::span<const std::string_view> parts, const std::optional<Usage>& usage);
void append(std::string& out, const Update& r);
void append(std::string& out, const Key& r);
void append(std::string& out, const Remove& r);
void append(std::string& out, const Table& r);
// Bytes an events record of `frames` bytes takes, header included (an upper bound).
std::size_t events_record_bound(std::size_t frames);

// One record as read: its type and body (a view into the bytes read) and whole size.
struct Record {
  RecordType type = RecordType::create;
  std::string_view body;
  std::size_t size = 0;
};

enum class Decoded {
  ok,
  truncated,  // the bytes end inside the record (a torn tail, or read more)
  corrupt,    // checksum, length or type is wrong
};

// Decodes the record at the start of `in`.
Decoded decode(std::string_view in, Record& out);

// A body's fields; false when the body is malformed.
bool parse(std::string_view body, Create& r);
bool parse(std::string_view body, Events& r);
bool parse_progress(std::string_view body, Events& r);
// An events or progress record's fields; false when it is neither, or malformed.
bool parse_events(const Record& r, Events& out);
bool parse(std::string_view body, Update& r);
bool parse(std::string_view body, Key& r);
bool parse(std::string_view body, Remove& r);
bool parse(std::string_view body, Table& r);
// The serial every body starts with (false when malformed).
bool parse_serial(std::string_view body, std::uint64_t& serial);

// The offset in `frames` after its first `n` frames (each ends with "\n\n"), or nullopt when it
// holds fewer.
std::optional<std::size_t> skip_frames(std::string_view frames, std::uint64_t n);

}  // namespace spool::logfmt
