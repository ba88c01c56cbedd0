#include "store/log_store.hpp"

#include "store/log_format.hpp"
#include "store/segment_files.hpp"
#include "stream/event_log.hpp"

#include "temp_dir.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <span>

namespace spool {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using testing::TempDir;

StreamInfo info_of(const std::string& id, StreamStatus status = StreamStatus::processing) {
  StreamInfo i;
  i.id = id;
  i.model = "m";
  i.status = status;
  i.created_at = SysTime(std::chrono::microseconds(1'700'000'000'000'000 + id.size()));
  i.updated_at = i.created_at;
  if (is_terminal(status)) i.completed_at = i.updated_at;
  i.usage = Usage{3, 4};
  return i;
}

std::int64_t logstore_us(SysTime t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

std::vector<NewEvent> events(std::uint64_t n, const std::string& tag) {
  std::vector<NewEvent> out;
  for (std::uint64_t i = 0; i < n; ++i) {
    out.push_back(NewEvent{"content_block_delta", R"({"text":")" + tag + std::to_string(i) + R"("})"});
  }
  return out;
}

// The frames an observer of those events receives from position `first` on.
std::string frames_of(std::span<const NewEvent> evs, std::uint64_t first) {
  std::string out;
  for (std::size_t i = 0; i < evs.size(); ++i) append_frame(out, evs[i].type, evs[i].json, EventId{first + i});
  return out;
}

// Queues events first, first + 1, ... of `id` on `store`.
void put(StreamStore& store, const std::string& id, std::uint64_t first, std::span<const NewEvent> evs) {
  StreamInfo info;
  info.id = id;
  store.append(info, first, evs.size(), frames_of(evs, first), StreamStore::Change::none, {});
}

// Waits (5 s at most) until everything queued on `store` is written.
void drain(StreamStore& store) {
  std::promise<void> p;
  auto f = p.get_future();
  store.barrier([&p] { p.set_value(); });
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
}

// Inverts the byte at `offset` of `path`.
void flip_byte(const std::string& path, std::streamoff offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  const int c = f.get();
  f.seekp(offset);
  f.put(static_cast<char>(c ^ 0xff));
}

std::unique_ptr<LogStore> open_store(const std::string& dir, std::uint64_t segment_bytes = std::uint64_t{64} << 20,
                                     std::chrono::milliseconds compaction_interval = std::chrono::hours(1)) {
  auto s = LogStore::open(
      LogStoreOptions{.dir = dir, .segment_bytes = segment_bytes, .compaction_interval = compaction_interval});
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().explanation);
  return s.ok() ? std::move(*s) : nullptr;
}

// All stored events of `id` after `after`, read in chunks of `chunk` bytes.
std::string read_all(LogStore& store, const std::string& id, std::uint64_t after = 0, std::size_t chunk = 1 << 20) {
  auto log = store.open_log(id);
  std::string out;
  for (;;) {
    auto n = log->read(after, chunk, out);
    EXPECT_TRUE(n.ok());
    if (!n.ok() || *n == 0) break;
    after += *n;
  }
  return out;
}

TEST(LogStore, WhatIsWrittenIsReadBackAfterReopeningByteForByte) {
  TempDir dir;
  const auto a = events(50, "a");
  const auto b = events(7, "b");
  {
    auto store = open_store(dir.path);
    store->create(info_of("a"), "owner-a", {});
    store->create(info_of("b"), "", {});
    put(*store, "a", 1, {a.data(), 20});
    put(*store, "b", 1, b);
    put(*store, "a", 21, {a.data() + 20, 30});
    store->bind_key("a", "key", "digest", {});
    store->update(info_of("a", StreamStatus::completed), {});
    drain(*store);
    EXPECT_EQ(read_all(*store, "a"), frames_of(a, 1));
  }
  auto store = open_store(dir.path);
  auto all = store->load_all();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  const StoredStream& sa = (*all)[0].info.id == "a" ? (*all)[0] : (*all)[1];
  EXPECT_EQ(sa.info.status, StreamStatus::completed);
  EXPECT_EQ(sa.info.events, 50u);
  EXPECT_EQ(sa.owner, "owner-a");
  EXPECT_EQ(sa.key, "key");
  EXPECT_EQ(sa.info.usage.output_tokens, 4);
  EXPECT_EQ(sa.info.created_at, info_of("a").created_at);
  EXPECT_EQ(read_all(*store, "a"), frames_of(a, 1));
  EXPECT_EQ(read_all(*store, "b"), frames_of(b, 1));
  // from every position, in small chunks: whole events, never a partial one
  for (std::uint64_t after = 0; after <= 50; after += 7) {
    EXPECT_EQ(read_all(*store, "a", after, 100), frames_of({a.begin() + static_cast<long>(after), a.end()}, after + 1));
  }
}

// A stream's incarnation and the tombstones of removed ids survive a reopen, from the checkpoint
// and from a replay of the log alike; a create of the id ends its tombstone, an old one is forgotten.
TEST(LogStore, IncarnationsAndTombstonesSurviveAReopen) {
  TempDir dir;
  const SysTime now = std::chrono::system_clock::now();
  {
    auto store = open_store(dir.path);
    StreamInfo later = info_of("later");
    later.incarnation = 3;
    store->create(later, "", {});
    store->create(info_of("gone"), "", {});
    store->create(info_of("again"), "", {});
    store->create(info_of("old"), "", {});
    store->create(info_of("quiet"), "", {});
    store->remove("gone", Tombstone{"gone", 1, now}, {});
    store->remove("again", Tombstone{"again", 4, now}, {});
    store->remove("old", Tombstone{"old", 2, now - kIncarnationMemory - 1h}, {});
    store->remove("quiet", std::nullopt, {});  // leaves nothing behind
    StreamInfo again = info_of("again");
    again.incarnation = 5;
    store->create(again, "", {});
    drain(*store);
  }
  auto check = [](LogStore& store, bool old_kept) {
    auto all = store.load_all();
    ASSERT_TRUE(all.ok());
    std::map<std::string, std::uint32_t> incarnations;
    for (const auto& s : *all) incarnations[s.info.id] = s.info.incarnation;
    EXPECT_EQ(incarnations, (std::map<std::string, std::uint32_t>{{"again", 5}, {"later", 3}}));
    std::map<std::string, std::uint32_t> tombs;
    for (const auto& t : store.tombstones()) tombs[t.id] = t.incarnation;
    std::map<std::string, std::uint32_t> want{{"gone", 1}};
    if (old_kept) want["old"] = 2;
    EXPECT_EQ(tombs, want);
  };
  {
    auto store = open_store(dir.path);  // from the checkpoint written at close, which forgot "old"
    check(*store, false);
  }
  fs::remove(dir.path + "/index");  // the same from a replay of the whole log
  auto store = open_store(dir.path);
  check(*store, true);
  const auto tombs = store->tombstones();
  ASSERT_FALSE(tombs.empty());
  for (const auto& t : tombs) {
    if (t.id == "gone") EXPECT_EQ(logstore_us(t.removed_at), logstore_us(now));
  }
}

// Events that change only the usage are one progress record; the usage read back is the latest,
// whichever record (progress or update) stated it, within a batch and across batches and reopens.
TEST(LogStore, TheUsageWrittenWithEventsIsTheOneReadBack) {
  TempDir dir;
  using Change = StreamStore::Change;
  const auto a = events(6, "a");
  auto with_usage = [](std::int64_t out) {
    StreamInfo i = info_of("a");
    i.usage = Usage{7, out};
    return i;
  };
  auto usage_after_reopen = [&](std::unique_ptr<LogStore>& store) {
    drain(*store);
    store.reset();
    store = open_store(dir.path);
    auto all = store->load_all();
    EXPECT_TRUE(all.ok() && all->size() == 1u);
    return all.ok() && !all->empty() ? (*all)[0].info.usage : Usage{};
  };
  auto store = open_store(dir.path);
  store->create(info_of("a"), "", {});
  store->append(with_usage(1), 1, 1, frames_of({a.data(), 1}, 1), Change::usage, {});
  EXPECT_EQ(usage_after_reopen(store).output_tokens, 1);
  // in one batch: a record change, then a usage change after it
  store->append(with_usage(2), 2, 1, frames_of({a.data() + 1, 1}, 2), Change::record, {});
  store->append(with_usage(3), 3, 1, frames_of({a.data() + 2, 1}, 3), Change::usage, {});
  EXPECT_EQ(usage_after_reopen(store).output_tokens, 3);
  // a usage change, then an update of the record (which states the usage it had)
  store->append(with_usage(4), 4, 1, frames_of({a.data() + 3, 1}, 4), Change::usage, {});
  drain(*store);
  store->update(with_usage(4), {});
  EXPECT_EQ(usage_after_reopen(store).output_tokens, 4);
  store->append(with_usage(6), 5, 2, frames_of({a.data() + 4, 2}, 5), Change::usage, {});
  EXPECT_EQ(usage_after_reopen(store).output_tokens, 6);
  EXPECT_EQ(read_all(*store, "a"), frames_of(a, 1));
}

TEST(LogStore, ARemovedStreamStaysGoneAndItsSegmentsAreReclaimed) {
  TempDir dir;
  auto store = open_store(dir.path, 4096);
  for (int i = 0; i < 20; ++i) {
    const std::string id = "s" + std::to_string(i);
    store->create(info_of(id), "", {});
    put(*store, id, 1, events(20, id));
    store->update(info_of(id, StreamStatus::completed), {});
    drain(*store);
  }
  const std::size_t full = store->segments();
  EXPECT_GT(full, 3u);
  for (int i = 0; i < 20; ++i) store->remove("s" + std::to_string(i), std::nullopt, {});
  store->create(info_of("last"), "", {});
  drain(*store);
  EXPECT_LE(store->segments(), 2u) << "from " << full;
  store.reset();
  store = open_store(dir.path, 4096);
  auto all = store->load_all();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].info.id, "last");
}

// Segments whose streams are mostly gone are compacted: what lives there is copied forward, the
// segment deleted; every stream reads back byte for byte, before and after a reopen.
TEST(LogStore, MostlyDeadSegmentsAreCompactedAndNothingLiveIsLost) {
  TempDir dir;
  using namespace std::chrono_literals;
  auto store = open_store(dir.path, 4096, 0ms);
  std::vector<std::string> kept;
  StreamInfo live = info_of("live");
  store->create(live, "owner", {});
  store->bind_key("live", "key", "digest", {});
  const auto live_events = events(62, "live");  // 60 written while the others are, 2 after compaction
  std::uint64_t live_next = 1;
  for (int i = 0; i < 30; ++i) {
    const std::string id = "s" + std::to_string(i);
    store->create(info_of(id), "", {});
    put(*store, id, 1, events(20, id));
    store->update(info_of(id, StreamStatus::completed), {});
    put(*store, "live", live_next, {live_events.data() + live_next - 1, 2});  // a running stream, all along
    live_next += 2;
    drain(*store);
    if (i % 5 == 0) kept.push_back(id);
  }
  const std::size_t full = store->segments();
  for (int i = 0; i < 30; ++i) {
    if (i % 5 != 0) store->remove("s" + std::to_string(i), std::nullopt, {});
  }
  for (int round = 0; round < 2 * static_cast<int>(full); ++round) drain(*store);  // a batch compacts one segment
  EXPECT_LE(store->segments(), full / 2) << "from " << full;
  auto check = [&](LogStore& s) {
    for (const auto& id : kept) EXPECT_EQ(read_all(s, id), frames_of(events(20, id), 1)) << id;
    EXPECT_EQ(read_all(s, "live"), frames_of({live_events.data(), live_next - 1}, 1));
    auto all = s.load_all();
    ASSERT_TRUE(all.ok());
    EXPECT_EQ(all->size(), kept.size() + 1);
    for (const auto& st : *all) {
      EXPECT_EQ(st.info.usage.output_tokens, 4) << st.info.id;
      if (st.info.id == "live") {
        EXPECT_EQ(st.key, "key");
      } else {
        EXPECT_EQ(st.info.status, StreamStatus::completed);
      }
    }
  };
  check(*store);
  put(*store, "live", live_next, {live_events.data() + live_next - 1, 2});  // it goes on after compaction
  live_next += 2;
  drain(*store);
  store.reset();
  store = open_store(dir.path, 4096, 0ms);
  check(*store);
}

TEST(LogStore, ATornTailIsCutOffAtEveryByteAndTheRestIsKept) {
  TempDir probe;
  std::uint64_t before = 0;
  std::uint64_t after = 0;
  {
    auto store = open_store(probe.path);
    store->create(info_of("kept"), "", {});
    drain(*store);
    before = fs::file_size(segment_path(probe.path + "/segments", 1));
    put(*store, "kept", 1, events(1, "x"));
    drain(*store);
    after = fs::file_size(segment_path(probe.path + "/segments", 1));
  }
  for (std::uint64_t cut = before; cut < after; ++cut) {
    TempDir dir;
    fs::copy(probe.path, dir.path, fs::copy_options::recursive);
    fs::remove(dir.path + "/index");  // the checkpoint written at close covers the whole log
    fs::resize_file(segment_path(dir.path + "/segments", 1), cut);
    auto store = open_store(dir.path);
    ASSERT_TRUE(store) << "cut at " << cut;
    auto all = store->load_all();
    ASSERT_TRUE(all.ok());
    ASSERT_EQ(all->size(), 1u);
    EXPECT_EQ((*all)[0].info.events, 0u) << "cut at " << cut;
    // and the store goes on writing after the cut
    put(*store, "kept", 1, events(1, "y"));
    drain(*store);
    EXPECT_EQ(read_all(*store, "kept"), frames_of(events(1, "y"), 1));
  }
}

// The first `n` bytes of segment `number`'s header.
std::string segment_header_prefix(std::uint32_t number, std::size_t n) {
  return logfmt::segment_header(number).substr(0, n);
}

TEST(LogStore, ASegmentKilledBeforeItsHeaderWasWholeIsATornWrite) {
  TempDir dir;
  {
    auto store = open_store(dir.path);
    store->create(info_of("kept"), "", {});
    drain(*store);
  }
  for (std::uint64_t n = 0; n < 16; ++n) {
    const std::string next = segment_path(dir.path + "/segments", 2);
    std::ofstream(next, std::ios::binary) << segment_header_prefix(2, n);
    auto store = open_store(dir.path);
    ASSERT_TRUE(store) << n << " bytes";
    auto all = store->load_all();
    ASSERT_TRUE(all.ok());
    EXPECT_EQ(all->size(), 1u);
  }
}

TEST(LogStore, DamageBeforeTheEndStopsTheStartNamingTheFile) {
  TempDir dir;
  {
    auto store = open_store(dir.path, 4096);
    for (int i = 0; i < 10; ++i) {
      store->create(info_of("s" + std::to_string(i)), "", {});
      put(*store, "s" + std::to_string(i), 1, events(30, "z"));
      drain(*store);
    }
    EXPECT_GT(store->segments(), 1u);
  }
  fs::remove(dir.path + "/index");
  const std::string first = segment_path(dir.path + "/segments", 1);
  flip_byte(first, 40);
  auto s = LogStore::open(LogStoreOptions{.dir = dir.path});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().explanation.find(first), std::string::npos) << s.error().explanation;
  EXPECT_NE(s.error().explanation.find("damaged"), std::string::npos) << s.error().explanation;
}

TEST(LogStore, AFileThatIsNotSpoolsIsRefusedAndLeftAlone) {
  TempDir dir;
  fs::create_directories(dir.path + "/segments");
  const std::string stranger = dir.path + "/segments/notes.txt";
  std::ofstream(stranger) << "hello";
  auto s = LogStore::open(LogStoreOptions{.dir = dir.path});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().explanation.find(stranger), std::string::npos) << s.error().explanation;
  EXPECT_TRUE(fs::exists(stranger));
  fs::remove(stranger);
  const std::string fake = segment_path(dir.path + "/segments", 1);
  std::ofstream(fake) << "SQLite format 3";
  auto again = LogStore::open(LogStoreOptions{.dir = dir.path});
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().explanation.find("not a Spool segment"), std::string::npos) << again.error().explanation;
  EXPECT_EQ(fs::file_size(fake), 15u);
}

TEST(LogStore, ADamagedCheckpointStopsTheStart) {
  TempDir dir;
  {
    auto store = open_store(dir.path);
    store->create(info_of("a"), "", {});
    drain(*store);
  }
  flip_byte(dir.path + "/index", 20);
  auto s = LogStore::open(LogStoreOptions{.dir = dir.path});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().explanation.find("checksum"), std::string::npos) << s.error().explanation;
}

TEST(LogStore, ASecondProcessOnTheSameDirectoryIsRefused) {
  TempDir dir;
  auto first = open_store(dir.path);
  auto second = LogStore::open(LogStoreOptions{.dir = dir.path});
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().explanation.find("in use"), std::string::npos);
}

}  // namespace
}  // namespace spool
