// An append-only log of SSE frames, serialized once and read in place by every observer.
#pragma once

#include <boost/asio/buffer.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace spool {

// Where an event is: its 1-based position in the log of one incarnation of its stream's id.
struct EventId {
  std::uint64_t position = 0;
  std::uint32_t incarnation = 1;
};

// The SSE id of an event (SPEC §1.2): "<position>" in an id's first incarnation, else
// "<position>.<incarnation>".
std::string to_string(EventId id);

// Bytes of the SSE frame of event `id`: "event: <type>\ndata: <json>\nid: <to_string(id)>\n\n".
std::size_t frame_size(std::string_view type, std::string_view json, EventId id);
// Writes that frame at `out` (frame_size bytes); returns the end.
char* write_frame(char* out, std::string_view type, std::string_view json, EventId id);
// Appends that frame to `out`.
void append_frame(std::string& out, std::string_view type, std::string_view json, EventId id);

// Frames are stored back to back in segments that never move or change once written, so a
// reader may keep pointers into them for as long as it keeps the log alive. Not thread-safe:
// the owner serializes append() and gather() (readers then use the bytes without the lock).
class EventLog {
 public:
  // The log of incarnation `incarnation` of its stream's id (its frames' ids carry it).
  explicit EventLog(std::uint32_t incarnation = 1) : incarnation_(incarnation) {}
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // The incarnation its frames name; set before the first append.
  std::uint32_t incarnation() const { return incarnation_; }
  void set_incarnation(std::uint32_t incarnation) { incarnation_ = incarnation; }

  // Appends `event: <type>\ndata: <json>\nid: <id>\n\n` where id names the new event's 1-based
  // position n (and the incarnation, after the first), and returns n.
  std::uint64_t append(std::string_view type, std::string_view json);

  // Number of events.
  std::uint64_t size() const { return index_.size(); }

  // Bytes of all frames.
  std::size_t bytes() const { return bytes_; }

  // Adds to `out` the bytes of the events after position `after` (0 = from the first) up to
  // position `upto` at most, whole segments at a time, stopping once about `max_bytes` are
  // gathered. Returns the position of the last event gathered (== `after` when none).
  std::uint64_t gather(std::uint64_t after, std::uint64_t upto, std::size_t max_bytes,
                       std::vector<boost::asio::const_buffer>& out) const;

  // Appends to `out` the frames of events after..upto (as gather() finds them).
  void copy(std::uint64_t after, std::uint64_t upto, std::string& out) const;

  // Frees every frame (the log's events are read from elsewhere from now on); size() becomes 0.
  void clear();

  // The frame of event `pos` (1-based), for tests and folding.
  std::string_view frame(std::uint64_t pos) const;

 private:
  struct Segment {
    std::unique_ptr<char[]> data;
    std::size_t capacity = 0;
    std::size_t used = 0;
    std::uint64_t first_event = 0;  // 0-based index of the first event stored here
  };
  struct Where {
    std::uint32_t segment;
    std::uint32_t offset;
  };

  char* reserve(std::size_t n);

  std::vector<Segment> segments_;
  std::vector<Where> index_;
  std::size_t bytes_ = 0;
  std::uint32_t incarnation_ = 1;
};

}  // namespace spool
