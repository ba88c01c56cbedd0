#include "store/durable_store.hpp"

#include "broker/memory_broker.hpp"
#include "stream/event_log.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <filesystem>
#include <fstream>
#include <future>

namespace spool {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the system's temporary directory, removed afterwards.
struct TempDir {
  TempDir()
      : path(fs::temp_directory_path() /
             ("spool-store-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++))) {
    fs::remove_all(path);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path path;
  static inline int counter = 0;
};

std::unique_ptr<DurableStore> open_store(const fs::path& dir) {
  auto s = DurableStore::open(DurableStoreOptions{dir.string(), false});
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().explanation);
  return s.ok() ? std::move(*s) : nullptr;
}

// Blocks until everything queued on `store` is committed.
void wait_written(DurableStore& store) {
  std::promise<void> done;
  store.barrier([&] { done.set_value(); });
  done.get_future().wait();
}

// The frames of `evs` from position `first` on.
std::string frames_from(const std::vector<NewEvent>& evs, std::uint64_t first) {
  std::string out;
  for (std::size_t i = 0; i < evs.size(); ++i) append_frame(out, evs[i].type, evs[i].json, first + i);
  return out;
}

StreamInfo record(const std::string& id, StreamStatus status) {
  StreamInfo i;
  i.id = id;
  i.model = "m";
  i.message_count = 2;
  i.thinking_enabled = true;
  i.status = status;
  i.created_at = SysTime(std::chrono::milliseconds(1'700'000'000'000));
  i.updated_at = i.created_at;
  return i;
}

TEST(DurableStore, WhatIsWrittenIsThereAfterReopening) {
  TempDir dir;
  {
    auto store = open_store(dir.path);
    ASSERT_TRUE(store);
    EXPECT_TRUE(store->load_all()->empty());
    store->create(record("a", StreamStatus::pending), "owner-1", {});
    const std::vector<NewEvent> head{{"message_start", R"({"x":1})"}, {"content_block_delta", R"({"x":2})"}};
    const std::vector<NewEvent> tail{{"message_stop", "{}"}};
    store->append("a", 1, head.size(), frames_from(head, 1), nullptr, {});
    store->append("a", 3, tail.size(), frames_from(tail, 3), nullptr, {});
    StreamInfo done = record("a", StreamStatus::completed);
    done.completed_at = SysTime(std::chrono::milliseconds(1'700'000'001'000));
    done.usage = Usage{7, 3};
    store->update(done, {});
    store->bind_key("a", "owner-1\nkey", "123", {});
    store->create(record("b", StreamStatus::pending), "", {});
    store->create(record("gone", StreamStatus::pending), "", {});
    store->append("gone", 1, tail.size(), frames_from(tail, 1), nullptr, {});
    store->remove("gone", {});
    bool ran = false;
    store->barrier([&] { ran = true; });
    wait_written(*store);
    EXPECT_TRUE(ran);
    EXPECT_GE(store->commits(), 1u);
  }
  auto store = open_store(dir.path);
  auto all = store->load_all();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  const StoredStream& a = (*all)[0];
  EXPECT_EQ(a.info.id, "a");
  EXPECT_EQ(a.info.status, StreamStatus::completed);
  EXPECT_EQ(a.info.model, "m");
  EXPECT_EQ(a.info.message_count, 2);
  EXPECT_TRUE(a.info.thinking_enabled);
  EXPECT_EQ(a.info.usage.input_tokens, 7);
  EXPECT_EQ(a.info.events, 3u);
  ASSERT_TRUE(a.info.completed_at.has_value());
  EXPECT_EQ(*a.info.completed_at, SysTime(std::chrono::milliseconds(1'700'000'001'000)));
  EXPECT_EQ(a.owner, "owner-1");
  EXPECT_EQ(a.key, "owner-1\nkey");
  EXPECT_EQ(a.digest, "123");
  ASSERT_EQ(a.events.size(), 3u);
  EXPECT_EQ(a.events[1].type, "content_block_delta");
  EXPECT_EQ(a.events[1].json, R"({"x":2})");
  EXPECT_EQ((*all)[1].info.id, "b");
  EXPECT_EQ((*all)[1].info.status, StreamStatus::pending);
}

TEST(DurableStore, ADirectoryThatCannotHoldTheStoreIsAClearError) {
  TempDir dir;
  fs::create_directories(dir.path);
  { std::ofstream(dir.path / "file") << "x"; }
  auto under_file = DurableStore::open(DurableStoreOptions{(dir.path / "file" / "sub").string(), false});
  ASSERT_FALSE(under_file.ok());
  EXPECT_NE(under_file.error().explanation.find("cannot be created"), std::string::npos)
      << under_file.error().explanation;

  fs::create_directories(dir.path / "garbage");
  { std::ofstream(dir.path / "garbage" / "spool.db") << std::string(8192, 'g'); }
  auto garbage = DurableStore::open(DurableStoreOptions{(dir.path / "garbage").string(), false});
  ASSERT_FALSE(garbage.ok());
  EXPECT_NE(garbage.error().explanation.find("is not a Spool database"), std::string::npos)
      << garbage.error().explanation;

  auto first = open_store(dir.path / "shared");
  auto second = DurableStore::open(DurableStoreOptions{(dir.path / "shared").string(), false});
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().explanation.find("in use"), std::string::npos) << second.error().explanation;
}

TEST(DurableStore, AnotherProgramsDatabaseIsRefused) {
  TempDir dir;
  fs::create_directories(dir.path);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir.path / "spool.db").string().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE notes(text TEXT)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto other = DurableStore::open(DurableStoreOptions{dir.path.string(), false});
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().explanation.find("not a Spool database"), std::string::npos) << other.error().explanation;
}

// Runs `aw` to completion on `ctx`.
template <class T>
T run(boost::asio::io_context& ctx, boost::asio::awaitable<T> aw) {
  auto fut = boost::asio::co_spawn(ctx, std::move(aw), boost::asio::use_future);
  ctx.restart();
  while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) ctx.run_one();
  return fut.get();
}

TEST(DurableStore, AMemoryBrokerOnTheStoreRestoresStreamsAndEndsTheRunningOnes) {
  TempDir dir;
  {
    boost::asio::io_context ctx;
    auto store = open_store(dir.path);
    MemoryBroker broker(ctx.get_executor(),
                        MemoryBrokerOptions{std::chrono::seconds(0), std::chrono::hours(1), store.get()});
    auto done = run(ctx, broker.create(StreamSpec{"done", "m", 1, false, "o"}));
    auto running = run(ctx, broker.create(StreamSpec{"running", "m", 1, false, "o"}));
    const std::vector<NewEvent> head{{"message_start", "{}"}, {"content_block_delta", R"({"t":"hi"})"}};
    const std::vector<NewEvent> tail{{"message_stop", "{}"}};
    (*done)->publish(head, StreamStatus::processing);
    (*done)->publish(tail, StreamStatus::completed);
    (*running)->publish(head, StreamStatus::processing);
    EXPECT_TRUE(run(ctx, broker.flush("running")).ok());
    // a cursor sees what is committed: the whole of "done"
    auto cursor = run(ctx, broker.open("done", 0, ctx.get_executor()));
    ReadChunk chunk = run(ctx, (*cursor)->next());
    EXPECT_EQ(chunk.events, 3u);
    cursor->reset();
    EXPECT_TRUE(run(ctx, broker.remove("nope")).error().code == Errc::not_found);
    broker.stop();
  }
  boost::asio::io_context ctx;
  auto store = open_store(dir.path);
  MemoryBroker broker(ctx.get_executor(),
                      MemoryBrokerOptions{std::chrono::seconds(0), std::chrono::hours(1), store.get()});
  EXPECT_EQ(broker.restore(*store->load_all()), 1u);
  auto done = run(ctx, broker.info("done"));
  EXPECT_EQ(done->status, StreamStatus::completed);
  EXPECT_EQ(done->events, 3u);
  auto running = run(ctx, broker.info("running"));
  EXPECT_EQ(running->status, StreamStatus::error);
  EXPECT_EQ(running->error_message.value_or(""), "interrupted by restart");
  EXPECT_EQ(running->events, 3u);
  // the error event is the last one, and it is stored too
  auto all = store->load_all();
  const StoredStream& r = (*all)[1].info.id == "running" ? (*all)[1] : (*all)[0];
  ASSERT_EQ(r.events.size(), 3u);
  EXPECT_EQ(r.events.back().type, "error");
  EXPECT_NE(r.events.back().json.find("interrupted by restart"), std::string::npos);
  EXPECT_EQ(r.info.status, StreamStatus::error);
  broker.stop();
}

}  // namespace
}  // namespace spool
