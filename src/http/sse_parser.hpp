// An incremental parser for Server-Sent Events: upstream engines' streams, and the command-line
// client reading Spool's own. Transport-free (no Beast).
#pragma once

#include <functional>
#include <limits>
#include <string>
#include <string_view>

namespace spool {

// One dispatched event.
struct SseEvent {
  std::string event;  // the `event:` field, empty when absent
  std::string data;   // `data:` lines joined with '\n'
  std::string id;     // the event's `id:` field, empty when absent
};

// Feed bytes as they arrive (any split); complete events are handed to the callback. Lines end
// with \n, \r\n or \r; comments and unknown fields are ignored. A line, or an event's data, longer
// than `max_event_bytes` stops the parser (feed() returns false and overflow() says why): what it
// holds is bounded whatever the peer sends.
class SseParser {
 public:
  // `on_event` returns false to stop parsing (feed() then returns false too).
  explicit SseParser(std::function<bool(SseEvent&&)> on_event,
                     std::size_t max_event_bytes = std::numeric_limits<std::size_t>::max())
      : on_event_(std::move(on_event)), max_(max_event_bytes) {}
  bool feed(std::string_view bytes);
  // Bytes held for an incomplete line or event.
  std::size_t pending() const { return line_.size() + data_.size() + event_.size() + id_.size(); }
  // Empty, or why feed() stopped: "an SSE line of more than N bytes" or "an SSE event of more than N bytes".
  const std::string& overflow() const { return overflow_; }

 private:
  bool line(std::string_view l);
  std::function<bool(SseEvent&&)> on_event_;
  std::size_t max_;
  std::string line_;
  std::string event_, data_, id_;
  std::string overflow_;
  bool has_data_ = false;
  bool after_cr_ = false;
};

}  // namespace spool
