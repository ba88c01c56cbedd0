#include "store/log_index.hpp"

#include "store/crc32c.hpp"

#include <algorithm>

namespace spool {
namespace {

using namespace logfmt;

constexpr std::string_view kCheckpointMagic = "SPOOLIDX";
// 2 added each entry's progress record, 3 the tombstones after the entries (1 and 2 are read too).
constexpr std::uint32_t kCheckpointVersion = 3;

void put_loc(std::string& out, const RecordLoc& l) {
  put_varint(out, l.segment);
  put_varint(out, l.offset);
  put_varint(out, l.size);
}

bool get_loc(Reader& in, RecordLoc& l) {
  std::uint64_t segment = 0;
  std::uint64_t size = 0;
  if (!in.varint(segment) || !in.varint(l.offset) || !in.varint(size)) return false;
  if (segment > UINT32_MAX || size > kMaxRecordBytes) return false;
  l.segment = static_cast<std::uint32_t>(segment);
  l.size = static_cast<std::uint32_t>(size);
  return true;
}

RecordLoc loc_of(const Record& r, std::uint32_t segment, std::uint64_t offset) {
  return RecordLoc{segment, static_cast<std::uint32_t>(r.size), offset};
}

}  // namespace

void LogIndex::add_bytes(IndexEntry& e, std::uint32_t segment, std::uint64_t n) {
  live_[segment] += n;
  if (!e.footprint.empty() && e.footprint.back().first == segment) {
    e.footprint.back().second += n;
    return;
  }
  e.footprint.emplace_back(segment, n);
}

void LogIndex::erase(std::uint64_t serial) {
  auto it = by_serial_.find(serial);
  if (it == by_serial_.end()) return;
  for (const auto& [segment, n] : it->second.footprint) {
    auto l = live_.find(segment);
    if (l == live_.end()) continue;
    l->second -= std::min(l->second, n);
    if (l->second == 0) live_.erase(l);
  }
  serial_of_.erase(it->second.id);
  by_serial_.erase(it);
}

void LogIndex::apply(const Record& r, std::uint32_t segment, std::uint64_t offset) {
  std::uint64_t serial = 0;
  if (!parse_serial(r.body, serial)) return;
  next_serial_ = std::max(next_serial_, serial + 1);
  if (r.type == RecordType::create) {
    Create c;
    if (!parse(r.body, c)) return;
    if (auto same = by_serial_.find(serial); same != by_serial_.end() && same->second.id == c.id) {
      same->second.create = loc_of(r, segment, offset);  // a copy (compaction)
      add_bytes(same->second, segment, r.size);
      return;
    }
    if (auto old = serial_of_.find(c.id); old != serial_of_.end()) erase(old->second);  // never both
    erase(serial);
    tombstones_.erase(c.id);  // the id's incarnation is in its create record now
    IndexEntry& e = by_serial_[serial];
    e.serial = serial;
    e.id = c.id;
    e.create = loc_of(r, segment, offset);
    serial_of_[e.id] = serial;
    add_bytes(e, segment, r.size);
    return;
  }
  auto it = by_serial_.find(serial);
  if (it == by_serial_.end()) return;  // a write that raced its stream's removal: dead bytes
  IndexEntry& e = it->second;
  switch (r.type) {
    case RecordType::events:
    case RecordType::progress: {
      Events ev;
      if (!parse_events(r, ev)) return;
      const Extent x{segment, offset, static_cast<std::uint32_t>(r.size), ev.first, ev.count};
      // Extents are in position order; only a copy (compaction) starts at or before the last one.
      auto same = e.extents.end();
      if (!e.extents.empty() && x.first <= e.extents.back().first) {
        same = std::lower_bound(e.extents.begin(), e.extents.end(), x.first,
                                [](const Extent& y, std::uint64_t first) { return y.first < first; });
      }
      if (same != e.extents.end() && same->first == x.first) {
        *same = x;
      } else {
        e.extents.push_back(x);
      }
      e.events = std::max(e.events, ev.first + ev.count - 1);
      if (ev.usage) e.progress = loc_of(r, segment, offset);
      break;
    }
    case RecordType::update:
      e.update = loc_of(r, segment, offset);
      e.progress = RecordLoc{};
      break;
    case RecordType::key:
      e.key = loc_of(r, segment, offset);
      break;
    case RecordType::table:
      e.table = loc_of(r, segment, offset);
      e.extents.clear();
      e.extents.shrink_to_fit();
      break;
    case RecordType::remove: {
      Remove rm;
      if (parse(r.body, rm) && rm.incarnation > 0) tombstones_[e.id] = Tomb{rm.incarnation, rm.removed_us};
      erase(serial);
      return;
    }
    case RecordType::create:
      break;
  }
  add_bytes(e, segment, r.size);
}

void LogIndex::forget_segment(std::uint64_t serial, std::uint32_t segment) {
  auto it = by_serial_.find(serial);
  if (it == by_serial_.end()) return;
  auto& fp = it->second.footprint;
  for (auto f = fp.begin(); f != fp.end();) {
    if (f->first != segment) {
      ++f;
      continue;
    }
    if (auto l = live_.find(segment); l != live_.end()) {
      l->second -= std::min(l->second, f->second);
      if (l->second == 0) live_.erase(l);
    }
    f = fp.erase(f);
  }
}

std::vector<std::uint64_t> LogIndex::serials_in(std::uint32_t segment) const {
  std::vector<std::uint64_t> out;
  for (const auto& [serial, e] : by_serial_) {
    if (std::any_of(e.footprint.begin(), e.footprint.end(), [&](const auto& f) { return f.first == segment; })) {
      out.push_back(serial);
    }
  }
  return out;
}

const IndexEntry* LogIndex::find(const std::string& id) const {
  auto it = serial_of_.find(id);
  return it == serial_of_.end() ? nullptr : find(it->second);
}

const IndexEntry* LogIndex::find(std::uint64_t serial) const {
  auto it = by_serial_.find(serial);
  return it == by_serial_.end() ? nullptr : &it->second;
}

std::uint64_t LogIndex::live_bytes(std::uint32_t segment) const {
  auto it = live_.find(segment);
  return it == live_.end() ? 0 : it->second;
}

std::vector<std::uint32_t> LogIndex::live_segments() const {
  std::vector<std::uint32_t> out;
  out.reserve(live_.size());
  for (const auto& [segment, n] : live_) out.push_back(segment);
  return out;
}

void LogIndex::prune_tombstones(std::int64_t before_us, std::size_t most) {
  std::erase_if(tombstones_, [&](const auto& t) { return t.second.removed_us < before_us; });
  if (tombstones_.size() <= most) return;
  std::vector<std::int64_t> times;
  times.reserve(tombstones_.size());
  for (const auto& [id, t] : tombstones_) times.push_back(t.removed_us);
  const auto cut = times.begin() + static_cast<std::ptrdiff_t>(times.size() - most);
  std::nth_element(times.begin(), cut, times.end());
  const std::int64_t oldest_kept = *cut;
  std::erase_if(tombstones_, [&](const auto& t) { return t.second.removed_us < oldest_kept; });
}

// magic, version, crc32c of the rest, then: position, next serial, entry count, entries,
// tombstone count, tombstones.
std::string LogIndex::checkpoint(std::uint32_t segment, std::uint64_t offset) const {
  std::string body;
  put_varint(body, segment);
  put_varint(body, offset);
  put_varint(body, next_serial_);
  put_varint(body, by_serial_.size());
  for (const auto& [serial, e] : by_serial_) {
    put_varint(body, serial);
    put_string(body, e.id);
    put_varint(body, e.events);
    for (const RecordLoc* l : {&e.create, &e.update, &e.key, &e.table, &e.progress}) put_loc(body, *l);
    put_varint(body, e.extents.size());
    for (const auto& x : e.extents) {
      put_loc(body, RecordLoc{x.segment, x.size, x.offset});
      put_varint(body, x.first);
      put_varint(body, x.count);
    }
    put_varint(body, e.footprint.size());
    for (const auto& [seg, n] : e.footprint) {
      put_varint(body, seg);
      put_varint(body, n);
    }
  }
  put_varint(body, tombstones_.size());
  for (const auto& [id, t] : tombstones_) {
    put_string(body, id);
    put_varint(body, t.incarnation);
    put_signed(body, t.removed_us);
  }
  std::string out(kCheckpointMagic);
  put_u32(out, kCheckpointVersion);
  put_u32(out, crc32c(body));
  out += body;
  return out;
}

bool LogIndex::restore_tombstones(Reader& in) {
  std::uint64_t n = 0;
  if (!in.varint(n) || n > in.rest().size()) return false;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string id;
    std::uint64_t incarnation = 0;
    Tomb t;
    if (!in.string(id) || !in.varint(incarnation) || incarnation < 1 || incarnation > UINT32_MAX ||
        !in.signed_varint(t.removed_us)) {
      return false;
    }
    t.incarnation = static_cast<std::uint32_t>(incarnation);
    tombstones_[std::move(id)] = t;
  }
  return true;
}

Result<std::pair<std::uint32_t, std::uint64_t>> LogIndex::restore(std::string_view bytes) {
  auto bad = [](const std::string& why) { return make_error(Errc::internal, why); };
  if (bytes.size() < 16 || bytes.substr(0, 8) != kCheckpointMagic) return bad("not a Spool index checkpoint");
  const std::uint32_t version = get_u32(bytes.substr(8));
  if (version < 1 || version > kCheckpointVersion) return bad("an index checkpoint of another version");
  const std::string_view body = bytes.substr(16);
  if (crc32c(body) != get_u32(bytes.substr(12))) return bad("the index checkpoint fails its checksum");
  Reader in(body);
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;
  std::uint64_t n = 0;
  if (!in.varint(segment) || !in.varint(offset) || !in.varint(next_serial_) || !in.varint(n) || segment > UINT32_MAX) {
    return bad("the index checkpoint is malformed");
  }
  for (std::uint64_t i = 0; i < n; ++i) {
    IndexEntry e;
    std::uint64_t extents = 0;
    std::uint64_t segments = 0;
    bool ok = in.varint(e.serial) && in.string(e.id) && in.varint(e.events);
    for (RecordLoc* l : {&e.create, &e.update, &e.key, &e.table}) ok = ok && get_loc(in, *l);
    if (version >= 2) ok = ok && get_loc(in, e.progress);
    ok = ok && in.varint(extents) && extents <= in.rest().size();
    for (std::uint64_t k = 0; ok && k < extents; ++k) {
      RecordLoc l;
      Extent x;
      ok = get_loc(in, l) && in.varint(x.first) && in.varint(x.count);
      x.segment = l.segment;
      x.offset = l.offset;
      x.size = l.size;
      e.extents.push_back(x);
    }
    ok = ok && in.varint(segments) && segments <= in.rest().size();
    for (std::uint64_t k = 0; ok && k < segments; ++k) {
      std::uint64_t seg = 0;
      std::uint64_t bytes_in = 0;
      ok = in.varint(seg) && in.varint(bytes_in) && seg <= UINT32_MAX;
      if (ok) {
        e.footprint.emplace_back(static_cast<std::uint32_t>(seg), bytes_in);
        live_[static_cast<std::uint32_t>(seg)] += bytes_in;
      }
    }
    if (!ok) return bad("the index checkpoint is malformed");
    const std::uint64_t serial = e.serial;
    erase(serial);
    if (auto old = serial_of_.find(e.id); old != serial_of_.end()) erase(old->second);
    IndexEntry& stored = by_serial_[serial] = std::move(e);
    serial_of_[stored.id] = serial;
  }
  if (version >= 3 && !restore_tombstones(in)) return bad("the index checkpoint is malformed");
  if (!in.done()) return bad("the index checkpoint is malformed");
  return std::pair{static_cast<std::uint32_t>(segment), offset};
}

}  // namespace spool
