#include "stream/event_log.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace spool {
namespace {

constexpr std::size_t kFirstSegment = 1024;  // an idle job holds a few small events
constexpr std::size_t kMaxSegment = std::size_t{256} * 1024;

char* put(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

// The one place an event id is spelled (20 digits, '.', 10 digits at most).
std::string_view id_text(EventId id, char (&buf)[32]) {
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, id.position);
  if (id.incarnation > 1) {
    *end++ = '.';
    end = std::to_chars(end, buf + sizeof buf, id.incarnation).ptr;
  }
  return {buf, static_cast<std::size_t>(end - buf)};
}

}  // namespace

std::string to_string(EventId id) {
  char buf[32];
  return std::string(id_text(id, buf));
}

std::size_t frame_size(std::string_view type, std::string_view json, EventId id) {
  char buf[32];
  return 7 + type.size() + 7 + json.size() + 5 + id_text(id, buf).size() + 2;
}

char* write_frame(char* out, std::string_view type, std::string_view json, EventId id) {
  char buf[32];
  char* p = put(out, "event: ");
  p = put(p, type);
  p = put(p, "\ndata: ");
  p = put(p, json);
  p = put(p, "\nid: ");
  p = put(p, id_text(id, buf));
  return put(p, "\n\n");
}

void append_frame(std::string& out, std::string_view type, std::string_view json, EventId id) {
  const std::size_t at = out.size();
  out.resize(at + frame_size(type, json, id));
  write_frame(out.data() + at, type, json, id);
}

char* EventLog::reserve(std::size_t n) {
  if (segments_.empty() || segments_.back().capacity - segments_.back().used < n) {
    std::size_t cap = segments_.empty() ? kFirstSegment : std::min(segments_.back().capacity * 2, kMaxSegment);
    cap = std::max(cap, n);
    Segment s;
    s.data = std::make_unique_for_overwrite<char[]>(cap);
    s.capacity = cap;
    s.first_event = index_.size();
    segments_.push_back(std::move(s));
  }
  Segment& s = segments_.back();
  index_.push_back(Where{static_cast<std::uint32_t>(segments_.size() - 1), static_cast<std::uint32_t>(s.used)});
  char* p = s.data.get() + s.used;
  s.used += n;
  bytes_ += n;
  return p;
}

std::uint64_t EventLog::append(std::string_view type, std::string_view json) {
  const EventId id{index_.size() + 1, incarnation_};
  write_frame(reserve(frame_size(type, json, id)), type, json, id);
  const std::uint64_t pos = id.position;
  return pos;
}

std::uint64_t EventLog::gather(std::uint64_t after, std::uint64_t upto, std::size_t max_bytes,
                               std::vector<boost::asio::const_buffer>& out) const {
  upto = std::min<std::uint64_t>(upto, index_.size());
  std::uint64_t pos = after;
  std::size_t gathered = 0;
  while (pos < upto && gathered < max_bytes) {
    const Where w = index_[pos];
    const Segment& s = segments_[w.segment];
    const bool last_segment = w.segment + 1 == segments_.size();
    std::uint64_t end_event = last_segment ? index_.size() : segments_[w.segment + 1].first_event;
    std::size_t end_offset = s.used;
    if (end_event > upto) {  // stop inside this segment, where event upto + 1 begins
      end_event = upto;
      end_offset = index_[upto].offset;
    }
    const std::size_t len = end_offset - w.offset;
    out.emplace_back(s.data.get() + w.offset, len);
    gathered += len;
    pos = end_event;
  }
  return pos;
}

void EventLog::copy(std::uint64_t after, std::uint64_t upto, std::string& out) const {
  // Called per publish (a few events): frame by frame, with no list of buffers to allocate.
  upto = std::min<std::uint64_t>(upto, index_.size());
  std::size_t n = 0;
  for (std::uint64_t pos = after + 1; pos <= upto; ++pos) n += frame(pos).size();
  out.reserve(out.size() + n);
  for (std::uint64_t pos = after + 1; pos <= upto; ++pos) out.append(frame(pos));
}

void EventLog::clear() {
  std::vector<Segment>().swap(segments_);
  std::vector<Where>().swap(index_);
  bytes_ = 0;
}

std::string_view EventLog::frame(std::uint64_t pos) const {
  if (pos == 0 || pos > index_.size()) return {};
  const Where w = index_[pos - 1];
  const Segment& s = segments_[w.segment];
  std::size_t end = s.used;
  if (pos < index_.size() && index_[pos].segment == w.segment) end = index_[pos].offset;
  return {s.data.get() + w.offset, end - w.offset};
}

}  // namespace spool
