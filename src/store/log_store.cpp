#include "store/log_store.hpp"

#include "store/log_store_impl.hpp"
#include "stream/event_log.hpp"

#include <algorithm>
#include <type_traits>

namespace spool {
namespace {

using logfmt::Record;
using logstore::from_us;
using logstore::Op;
using logstore::to_us;

logfmt::Update update_of(const StreamInfo& info) {
  logfmt::Update u;
  u.status = info.status;
  u.updated_us = to_us(info.updated_at);
  if (info.completed_at) u.completed_us = to_us(*info.completed_at);
  u.error_message = info.error_message;
  u.input_tokens = info.usage.input_tokens;
  u.output_tokens = info.usage.output_tokens;
  return u;
}

// Reads a stream's events records, in order, through the segment files it holds open.
class LogReader final : public StoredLog {
 public:
  LogReader(std::vector<logfmt::Extent> extents, std::map<std::uint32_t, std::shared_ptr<SegmentFile>> files)
      : extents_(std::move(extents)), files_(std::move(files)) {}
  // A reader whose every read fails with `broken` (its extents could not be read).
  explicit LogReader(Error broken) : broken_(std::move(broken)) {}

  Result<std::uint64_t> read(std::uint64_t after, std::size_t max_bytes, std::string& out) override {
    if (broken_) return *broken_;
    auto it = std::upper_bound(extents_.begin(), extents_.end(), after,
                               [](std::uint64_t pos, const logfmt::Extent& e) { return pos < e.first + e.count - 1; });
    std::uint64_t n = 0;
    const std::size_t start = out.size();
    for (; it != extents_.end() && out.size() - start < max_bytes; ++it) {
      const auto file = files_.find(it->segment);
      if (file == files_.end())
        return make_error(Errc::internal, "segment " + std::to_string(it->segment) + " is gone");
      if (auto st = file->second->read(it->offset, it->size, scratch_); !st) return st.error();
      Record r;
      logfmt::Events ev;
      if (logfmt::decode(scratch_, r) != logfmt::Decoded::ok || !logfmt::parse_events(r, ev)) {
        return make_error(Errc::internal, file->second->path() + " is damaged at offset " + std::to_string(it->offset));
      }
      const std::uint64_t skip = after >= ev.first ? after - ev.first + 1 : 0;
      const auto from = logfmt::skip_frames(ev.frames, skip);
      if (!from) return make_error(Errc::internal, file->second->path() + ": a record holds fewer events than it says");
      out.append(ev.frames.substr(*from));
      n += ev.count - skip;
      after = ev.first + ev.count - 1;
    }
    return n;
  }

 private:
  std::vector<logfmt::Extent> extents_;
  std::map<std::uint32_t, std::shared_ptr<SegmentFile>> files_;
  std::string scratch_;
  std::optional<Error> broken_;
};

}  // namespace

Result<std::string> LogStore::Impl::read_record(const RecordLoc& loc) const {
  std::shared_ptr<SegmentFile> file;
  {
    std::lock_guard lk(index_mu);
    auto it = files.find(loc.segment);
    if (it != files.end()) file = it->second;
  }
  if (!file) return make_error(Errc::internal, "segment " + std::to_string(loc.segment) + " is gone");
  std::string bytes;
  if (auto st = file->read(loc.offset, loc.size, bytes); !st) return st.error();
  return bytes;
}

// The record of one stream, read from its create, update and key records.
Result<StoredStream> LogStore::Impl::load(const IndexEntry& e) const {
  StoredStream s;
  auto read = [&](const RecordLoc& loc, logfmt::RecordType type, auto& fields) -> Status {
    auto bytes = read_record(loc);
    if (!bytes) return bytes.error();
    Record r;
    bool parsed = false;
    if (logfmt::decode(*bytes, r) == logfmt::Decoded::ok && r.type == type) {
      if constexpr (std::is_same_v<std::decay_t<decltype(fields)>, logfmt::Events>) {
        parsed = logfmt::parse_events(r, fields);
      } else {
        parsed = logfmt::parse(r.body, fields);
      }
    }
    if (!parsed) {
      return make_error(Errc::internal,
                        segment_path(seg_dir, loc.segment) + " is damaged at offset " + std::to_string(loc.offset));
    }
    return Ok{};
  };
  logfmt::Create c;
  if (auto st = read(e.create, logfmt::RecordType::create, c); !st) return st.error();
  logfmt::Update u;
  if (e.update.size > 0) {
    if (auto st = read(e.update, logfmt::RecordType::update, u); !st) return st.error();
  }
  if (e.key.size > 0) {
    logfmt::Key k;
    if (auto st = read(e.key, logfmt::RecordType::key, k); !st) return st.error();
    s.key = std::move(k.key);
    s.digest = std::move(k.digest);
  }
  logfmt::Events progress;  // events written with a usage after the last update, if any
  if (e.progress.size > 0) {
    if (auto st = read(e.progress, logfmt::RecordType::progress, progress); !st) return st.error();
  }
  s.info.id = e.id;
  s.info.model = std::move(c.model);
  s.info.message_count = static_cast<int>(c.message_count);
  s.info.thinking_enabled = c.thinking;
  s.info.created_at = from_us(c.created_us);
  s.info.incarnation = c.incarnation;
  s.info.status = u.status;
  s.info.updated_at = e.update.size > 0 ? from_us(u.updated_us) : s.info.created_at;
  if (u.completed_us) s.info.completed_at = from_us(*u.completed_us);
  s.info.error_message = std::move(u.error_message);
  s.info.usage = progress.usage.value_or(Usage{u.input_tokens, u.output_tokens});
  s.info.events = e.events;
  s.owner = std::move(c.owner);
  return s;
}

LogStore::LogStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

LogStore::~LogStore() = default;

Result<std::unique_ptr<LogStore>> LogStore::open(const LogStoreOptions& opts) {
  auto impl = std::make_unique<Impl>();
  impl->opts = opts;
  if (auto st = impl->open(); !st) return st.error();
  return std::unique_ptr<LogStore>(new LogStore(std::move(impl)));
}

Result<std::vector<StoredStream>> LogStore::load_all() {
  std::vector<const IndexEntry*> entries;
  {
    std::lock_guard lk(impl_->index_mu);
    for (const auto& [serial, e] : impl_->index.entries()) entries.push_back(&e);
  }
  std::vector<StoredStream> out;
  out.reserve(entries.size());
  for (const IndexEntry* e : entries) {
    auto s = impl_->load(*e);
    if (!s) return s.error();
    out.push_back(std::move(*s));
  }
  std::sort(out.begin(), out.end(), [](const StoredStream& a, const StoredStream& b) {
    return a.info.created_at != b.info.created_at ? a.info.created_at < b.info.created_at : a.info.id < b.info.id;
  });
  return out;
}

std::vector<Tombstone> LogStore::tombstones() const {
  std::vector<Tombstone> out;
  std::lock_guard lk(impl_->index_mu);
  out.reserve(impl_->index.tombstones().size());
  for (const auto& [id, t] : impl_->index.tombstones())
    out.push_back(Tombstone{id, t.incarnation, from_us(t.removed_us)});
  return out;
}

void LogStore::create(const StreamInfo& info, const std::string& owner, Written done) {
  Op op;
  op.kind = Op::Kind::create;
  op.id = info.id;
  op.create.id = info.id;
  op.create.model = info.model;
  op.create.owner = owner;
  op.create.message_count = info.message_count;
  op.create.thinking = info.thinking_enabled;
  op.create.created_us = to_us(info.created_at);
  op.create.incarnation = info.incarnation;
  op.update = update_of(info);
  op.done = std::move(done);
  impl_->push(std::move(op));
}

void LogStore::append(const StreamInfo& info, std::uint64_t first_position, std::uint64_t count, std::string frames,
                      Change change, Written done) {
  Op op;
  op.kind = Op::Kind::append;
  op.id = info.id;
  op.first = first_position;
  op.count = count;
  op.frames = std::move(frames);
  if (change == Change::record) op.update = update_of(info);
  op.with_update = change == Change::record;
  if (change == Change::usage) op.usage = info.usage;
  op.done = std::move(done);
  impl_->push(std::move(op));
}

void LogStore::update(const StreamInfo& info, Written done) {
  Op op;
  op.kind = Op::Kind::update;
  op.id = info.id;
  op.update = update_of(info);
  op.done = std::move(done);
  impl_->push(std::move(op));
}

void LogStore::bind_key(const std::string& id, const std::string& key, const std::string& digest, Written done) {
  Op op;
  op.kind = Op::Kind::key;
  op.id = id;
  op.key = key;
  op.digest = digest;
  op.done = std::move(done);
  impl_->push(std::move(op));
}

void LogStore::remove(const std::string& id, std::optional<Tombstone> tombstone, Written done) {
  Op op;
  op.kind = Op::Kind::remove;
  op.id = id;
  if (tombstone) {
    op.remove.incarnation = tombstone->incarnation;
    op.remove.removed_us = to_us(tombstone->removed_at);
  }
  op.done = std::move(done);
  impl_->push(std::move(op));
}

void LogStore::barrier(Written done) {
  Op op;
  op.done = std::move(done);
  impl_->push(std::move(op));
}

std::optional<std::string> LogStore::failure() const {
  std::lock_guard lk(impl_->mu);
  return impl_->failing;
}

std::unique_ptr<StoredLog> LogStore::open_log(const std::string& id) {
  std::vector<logfmt::Extent> extents;
  std::map<std::uint32_t, std::shared_ptr<SegmentFile>> files;
  RecordLoc table;
  {
    std::lock_guard lk(impl_->index_mu);
    const IndexEntry* e = impl_->index.find(id);
    if (e == nullptr) return std::make_unique<LogReader>(std::move(extents), std::move(files));
    extents = e->extents;
    table = e->table;
    files = impl_->files;
  }
  if (table.size > 0) {
    auto bytes = impl_->read_record(table);
    Record r;
    logfmt::Table t;
    if (!bytes || logfmt::decode(*bytes, r) != logfmt::Decoded::ok || !logfmt::parse(r.body, t)) {
      return std::make_unique<LogReader>(make_error(
          Errc::internal, "the extents of " + id + " cannot be read: " + segment_path(impl_->seg_dir, table.segment) +
                              " is damaged at offset " + std::to_string(table.offset)));
    }
    t.extents.insert(t.extents.end(), extents.begin(), extents.end());
    extents = std::move(t.extents);
  }
  // By position; where compaction copied a record and stopped before its new table, the copy
  // (in memory, after the table's) stands for the original: the last of equal firsts is kept.
  std::stable_sort(extents.begin(), extents.end(),
                   [](const logfmt::Extent& a, const logfmt::Extent& b) { return a.first < b.first; });
  std::vector<logfmt::Extent> unique;
  unique.reserve(extents.size());
  for (const auto& x : extents) {
    if (!unique.empty() && unique.back().first == x.first) {
      unique.back() = x;
    } else {
      unique.push_back(x);
    }
  }
  extents = std::move(unique);
  return std::make_unique<LogReader>(std::move(extents), std::move(files));
}

void LogStore::close() { impl_->stop(); }

std::uint64_t LogStore::commits() const { return impl_->commits.load(); }

std::size_t LogStore::segments() const {
  std::lock_guard lk(impl_->index_mu);
  return impl_->files.size();
}

}  // namespace spool
