// The memory broker on the log store: finished logs leave memory and are read back from disk,
// byte for byte; a restart keeps them there; a SQLite data directory is moved over.
#include "broker/memory_broker.hpp"
#include "store/log_store.hpp"
#include "store/migrate.hpp"
#include "store/sqlite_fixture.hpp"
#include "stream/event_log.hpp"

#include "temp_dir.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <filesystem>
#include <future>

namespace spool {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using testing::TempDir;

template <class T>
T run(boost::asio::io_context& ctx, boost::asio::awaitable<T> aw) {
  auto fut = boost::asio::co_spawn(ctx, std::move(aw), boost::asio::use_future);
  ctx.restart();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (fut.wait_for(0s) != std::future_status::ready) {
    ctx.run_one_for(10ms);
    if (std::chrono::steady_clock::now() > deadline) ADD_FAILURE() << "timed out";
  }
  return fut.get();
}

// Everything a new cursor on `id` reads, from `after` on.
std::string read_all(boost::asio::io_context& ctx, Broker& broker, const std::string& id, std::uint64_t after = 0) {
  auto cursor = run(ctx, broker.open(id, after, 0, ctx.get_executor()));
  EXPECT_TRUE(cursor.ok());
  if (!cursor.ok()) return {};
  std::string out;
  for (;;) {
    ReadChunk chunk = run(ctx, (*cursor)->next());
    if (chunk.kind != ReadChunk::Kind::data) break;
    for (const auto& b : chunk.buffers) out.append(static_cast<const char*>(b.data()), b.size());
  }
  return out;
}

std::unique_ptr<LogStore> open_store(const std::string& dir) {
  auto s = LogStore::open(LogStoreOptions{.dir = dir});
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().explanation);
  return s.ok() ? std::move(*s) : nullptr;
}

// A broker on `store` whose finished logs leave memory as soon as nobody reads them.
MemoryBrokerOptions on(StreamStore* store) {
  return MemoryBrokerOptions{.stream_expiration = 0s, .sweep_interval = 1h, .store = store, .linger = 0ms};
}

std::vector<NewEvent> tokens(int n) {
  std::vector<NewEvent> out{{"message_start", R"({"type":"message_start"})"}};
  for (int i = 0; i < n; ++i) out.push_back({"content_block_delta", R"({"text":"t)" + std::to_string(i) + R"("})"});
  return out;
}

TEST(LogStoreBroker, AFinishedLogIsReadFromDiskAsItWasFromMemory) {
  TempDir dir;
  boost::asio::io_context ctx;
  auto store = open_store(dir.path);
  MemoryBroker broker(ctx.get_executor(), on(store.get()));
  auto w = run(ctx, broker.create(StreamSpec{"s", "m", 1, false, "o"}));
  ASSERT_TRUE(w.ok());
  // a cursor open while it runs keeps the log in memory and reads it there
  auto live = run(ctx, broker.open("s", 0, 0, ctx.get_executor()));
  (*w)->publish(tokens(500), StreamStatus::processing);
  (*w)->publish(std::vector<NewEvent>{{"message_stop", R"({"type":"message_stop"})"}}, StreamStatus::completed);
  EXPECT_TRUE(run(ctx, broker.flush("s")).ok());
  std::string from_memory;
  for (;;) {
    ReadChunk chunk = run(ctx, (*live)->next());
    if (chunk.kind != ReadChunk::Kind::data) break;
    for (const auto& b : chunk.buffers) from_memory.append(static_cast<const char*>(b.data()), b.size());
  }
  EXPECT_EQ(broker.logs_in_memory(), 1u);
  live->reset();  // the last reader leaves: the log goes to disk only
  EXPECT_EQ(broker.logs_in_memory(), 0u);
  const std::string from_disk = read_all(ctx, broker, "s");
  EXPECT_EQ(from_disk.size(), from_memory.size());
  EXPECT_EQ(from_disk, from_memory);
  // resuming from any position reads the rest, exactly
  for (std::uint64_t after : {1u, 17u, 250u, 501u, 502u}) {
    const std::string rest = read_all(ctx, broker, "s", after);
    const std::string marker = "\nid: " + std::to_string(after) + "\n\n";
    const auto at = from_memory.find(marker);
    ASSERT_NE(at, std::string::npos);
    EXPECT_EQ(rest, from_memory.substr(at + marker.size())) << "after " << after;
  }
  auto info = run(ctx, broker.info("s"));
  EXPECT_EQ(info->events, 502u);
  EXPECT_EQ(info->observers, 0);
  EXPECT_TRUE(run(ctx, broker.remove("s", Removal::tombstone)).ok());
  EXPECT_EQ(run(ctx, broker.open("s", 0, 0, ctx.get_executor())).error().code, Errc::not_found);
  broker.stop();
}

TEST(LogStoreBroker, AFinishedLogLingersInMemoryWithinItsBudgetThenLeaves) {
  TempDir dir;
  boost::asio::io_context ctx;
  auto store = open_store(dir.path);
  auto opts = on(store.get());
  opts.sweep_interval = 10ms;
  opts.linger = 300ms;
  opts.lingering_bytes = 64 * 1024;
  MemoryBroker broker(ctx.get_executor(), opts);
  auto finish = [&](const std::string& id, int n) {
    auto w = run(ctx, broker.create(StreamSpec{id, "m", 1, false, "o"}));
    (*w)->publish(tokens(n), StreamStatus::processing);
    (*w)->publish(std::vector<NewEvent>{{"message_stop", "{}"}}, StreamStatus::completed);
    EXPECT_TRUE(run(ctx, broker.flush(id)).ok());
  };
  finish("small", 10);  // lingers: well within the budget
  EXPECT_EQ(broker.logs_in_memory(), 1u);
  const std::string lingering = read_all(ctx, broker, "small");
  finish("big", 5000);  // more than the budget: leaves memory at once
  EXPECT_EQ(broker.logs_in_memory(), 1u);
  // and the small one leaves once its stay is over
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (broker.logs_in_memory() > 0 && std::chrono::steady_clock::now() < deadline) ctx.run_one_for(10ms);
  EXPECT_EQ(broker.logs_in_memory(), 0u);
  EXPECT_EQ(read_all(ctx, broker, "small"), lingering);
  EventLog big;
  for (const auto& e : tokens(5000)) big.append(e.type, e.json);
  big.append("message_stop", "{}");
  std::string expected;
  big.copy(0, big.size(), expected);
  EXPECT_EQ(read_all(ctx, broker, "big"), expected);
  broker.stop();
}

TEST(LogStoreBroker, ARestartKeepsLogsOnDiskAndEndsTheRunningOnes) {
  TempDir dir;
  std::string done_bytes;
  {
    boost::asio::io_context ctx;
    auto store = open_store(dir.path);
    MemoryBroker broker(ctx.get_executor(), on(store.get()));
    auto done = run(ctx, broker.create(StreamSpec{"done", "m", 1, false, "o"}));
    auto running = run(ctx, broker.create(StreamSpec{"running", "m", 1, false, "o"}));
    (*done)->publish(tokens(20), StreamStatus::processing);
    (*done)->publish(std::vector<NewEvent>{{"message_stop", "{}"}}, StreamStatus::completed);
    (*running)->publish(tokens(3), StreamStatus::processing);
    EXPECT_TRUE(run(ctx, broker.flush("running")).ok());
    done_bytes = read_all(ctx, broker, "done");
    broker.stop();
  }
  boost::asio::io_context ctx;
  auto store = open_store(dir.path);
  MemoryBroker broker(ctx.get_executor(), on(store.get()));
  EXPECT_EQ(broker.restore(*store->load_all()), 1u);
  EXPECT_EQ(read_all(ctx, broker, "done"), done_bytes);
  auto running = run(ctx, broker.info("running"));
  EXPECT_EQ(running->status, StreamStatus::error);
  EXPECT_EQ(running->events, 5u);
  const std::string tail = read_all(ctx, broker, "running", 4);
  EXPECT_EQ(tail.rfind("event: error\ndata: ", 0), 0u) << tail;
  EXPECT_NE(tail.find("interrupted by restart"), std::string::npos);
  EXPECT_NE(tail.find("\nid: 5\n\n"), std::string::npos);
  broker.stop();
}

TEST(LogStoreBroker, ADataDirectoryOfTheSqliteStoreIsMovedOver) {
  TempDir dir;
  StoredStream old;
  old.info.id = "old";
  old.info.model = "m";
  old.info.message_count = 1;
  old.info.status = StreamStatus::completed;
  old.info.created_at = SysTime(1'700'000'000'000'000us);
  old.info.updated_at = old.info.completed_at.emplace(old.info.created_at + 2s);
  old.owner = "owner";
  old.key = "owner\nk";
  old.digest = "digest";
  old.events = tokens(10);
  old.events.push_back({"message_stop", "{}"});
  testing::SqliteStoreFile(dir.path).add(old);
  std::string expected;
  {
    EventLog log;
    for (const auto& e : old.events) log.append(e.type, e.json);
    for (std::uint64_t i = 1; i <= log.size(); ++i) expected += log.frame(i);
  }
  auto store = open_store(dir.path);
  auto moved = migrate_sqlite_store(dir.path, *store);
  ASSERT_TRUE(moved.ok()) << moved.error().explanation;
  EXPECT_EQ(*moved, 1u);
  EXPECT_FALSE(fs::exists(dir.path + "/spool.db"));
  EXPECT_TRUE(fs::exists(dir.path + "/spool.db.migrated"));
  boost::asio::io_context ctx;
  MemoryBroker broker(ctx.get_executor(), on(store.get()));
  EXPECT_EQ(broker.restore(*store->load_all()), 0u);
  EXPECT_EQ(read_all(ctx, broker, "old"), expected);
  auto key = run(ctx, broker.find_key("owner\nk"));
  ASSERT_TRUE(key.ok() && *key);
  EXPECT_EQ((*key)->digest, "digest");
  EXPECT_EQ(*run(ctx, broker.owner("old")), "owner");
  // and a second start finds nothing more to move
  EXPECT_EQ(*migrate_sqlite_store(dir.path, *store), 0u);
  broker.stop();
}

}  // namespace
}  // namespace spool
