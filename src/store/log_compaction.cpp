// Compaction: a sealed segment whose streams are mostly gone has the records that still live
// copied to the active segment, then it is deleted. Runs on the writer thread, between batches.
//
// Every copy is a whole record written again, byte for byte; the index takes a copy in place of
// the original (LogIndex::apply), so a crash at any point leaves every record readable: the
// original segment is deleted only after a checkpoint that no longer counts it.
#include "store/log_store_impl.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>

namespace spool {
namespace {

using logfmt::Record;

constexpr double kMostlyDead = 0.5;  // a segment with less than this share of live bytes is compacted

Result<logfmt::Table> read_table(const LogStore::Impl& store, const RecordLoc& loc) {
  auto bytes = store.read_record(loc);
  if (!bytes) return bytes.error();
  Record r;
  logfmt::Table t;
  if (logfmt::decode(*bytes, r) != logfmt::Decoded::ok || r.type != logfmt::RecordType::table ||
      !logfmt::parse(r.body, t)) {
    return make_error(Errc::internal,
                      segment_path(store.seg_dir, loc.segment) + " is damaged at offset " + std::to_string(loc.offset));
  }
  return t;
}

}  // namespace

void LogStore::Impl::compact() {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_compaction < opts.compaction_interval) return;
  last_compaction = now;
  std::optional<std::uint32_t> victim;
  std::vector<std::uint64_t> serials;
  {
    std::lock_guard lk(index_mu);
    double least = kMostlyDead;
    for (const auto& [n, file] : files) {
      const std::uint64_t size = file->size();
      if (n == active->number() || size <= logfmt::kHeaderBytes) continue;
      const double live = static_cast<double>(index.live_bytes(n)) / static_cast<double>(size);
      if (live < least) {
        least = live;
        victim = n;
      }
    }
    if (victim) serials = index.serials_in(*victim);
  }
  if (!victim) return;
  std::string out;
  for (std::uint64_t serial : serials) {
    if (auto st = copy_live_records(serial, *victim, out); !st) {
      spdlog::warn("store: compacting segment {}: {}", *victim, st.error().explanation);
      return;
    }
  }
  if (!out.empty()) {
    if (auto st = write_and_apply(out); !st) {
      spdlog::warn("store: compacting segment {}: {}", *victim, st.error().explanation);
      return;
    }
  }
  if (auto st = rewrite_tables(serials); !st) {
    spdlog::warn("store: compacting segment {}: {}", *victim, st.error().explanation);
    return;
  }
  {
    std::lock_guard lk(index_mu);
    for (std::uint64_t serial : serials) index.forget_segment(serial, *victim);
  }
  spdlog::debug("store: segment {} compacted ({} stream(s), {} bytes copied)", *victim, serials.size(), out.size());
  drop_dead_segments();
}

Status LogStore::Impl::copy_live_records(std::uint64_t serial, std::uint32_t segment, std::string& out) {
  IndexEntry e;
  {
    std::lock_guard lk(index_mu);
    const IndexEntry* found = index.find(serial);
    if (found == nullptr) return Ok{};
    e = *found;
  }
  auto copy = [&](const RecordLoc& loc) -> Status {
    if (loc.size == 0) return Ok{};
    auto bytes = read_record(loc);
    if (!bytes) return bytes.error();
    out += *bytes;
    return Ok{};
  };
  auto here = [&](const RecordLoc& loc) { return loc.size > 0 && loc.segment == segment; };
  if (here(e.create)) {
    if (auto st = copy(e.create); !st) return st;
  }
  std::vector<logfmt::Extent> extents = e.extents;
  if (e.table.size > 0) {
    auto t = read_table(*this, e.table);
    if (!t) return t.error();
    extents.insert(extents.end(), t->extents.begin(), t->extents.end());
  }
  for (const auto& x : extents) {
    if (x.segment != segment) continue;
    if (auto st = copy(RecordLoc{x.segment, x.size, x.offset}); !st) return st;
  }
  if (here(e.key)) {
    if (auto st = copy(e.key); !st) return st;
  }
  // An update copy makes the update the latest record: a later progress record is copied after it.
  if (here(e.update)) {
    if (auto st = copy(e.update); !st) return st;
  }
  if (here(e.progress) || (here(e.update) && e.progress.size > 0)) {
    if (auto st = copy(e.progress); !st) return st;
  }
  return Ok{};
}

Status LogStore::Impl::rewrite_tables(const std::vector<std::uint64_t>& serials) {
  std::string out;
  for (std::uint64_t serial : serials) {
    RecordLoc table;
    std::vector<logfmt::Extent> copies;
    {
      std::lock_guard lk(index_mu);
      const IndexEntry* e = index.find(serial);
      if (e == nullptr || e->table.size == 0) continue;
      table = e->table;
      copies = e->extents;  // the events records just copied
    }
    auto t = read_table(*this, table);
    if (!t) return t.error();
    // The copies take the place of the extents starting where they start (both lists are in
    // position order).
    std::sort(copies.begin(), copies.end(),
              [](const logfmt::Extent& a, const logfmt::Extent& b) { return a.first < b.first; });
    std::vector<logfmt::Extent> merged;
    merged.reserve(t->extents.size() + copies.size());
    std::merge(copies.begin(), copies.end(), t->extents.begin(), t->extents.end(), std::back_inserter(merged),
               [](const logfmt::Extent& a, const logfmt::Extent& b) { return a.first < b.first; });
    auto last = std::unique(merged.begin(), merged.end(),
                            [](const logfmt::Extent& a, const logfmt::Extent& b) { return a.first == b.first; });
    merged.erase(last, merged.end());
    t->extents = std::move(merged);
    logfmt::append(out, logfmt::Table{serial, t->extents});
  }
  return out.empty() ? Status{Ok{}} : write_and_apply(out);
}

}  // namespace spool
