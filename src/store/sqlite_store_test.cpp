// The reader of the SQLite store's spool.db, on files written with plain SQL as that store wrote
// them: every stream comes back whole, and anything else is refused naming the file.
#include "store/sqlite_store.hpp"

#include "store/sqlite_fixture.hpp"

#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace spool {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using testing::SqliteStoreFile;
using testing::TempDir;

const SysTime kT0 = SysTime(1'700'000'000'123'457us);

StoredStream stream(const std::string& id, StreamStatus status, SysTime created, std::size_t events) {
  StoredStream s;
  s.info.id = id;
  s.info.model = "model-" + id;
  s.info.message_count = 3;
  s.info.status = status;
  s.info.created_at = created;
  s.info.updated_at = created + 1us;
  for (std::size_t i = 1; i <= events; ++i) {
    s.events.push_back({"content_block_delta", R"({"i":)" + std::to_string(i) + "}"});
  }
  s.info.events = events;
  return s;
}

void expect_same(const StoredStream& got, const StoredStream& want) {
  SCOPED_TRACE(want.info.id);
  EXPECT_EQ(got.info.id, want.info.id);
  EXPECT_EQ(got.info.model, want.info.model);
  EXPECT_EQ(got.info.message_count, want.info.message_count);
  EXPECT_EQ(got.info.thinking_enabled, want.info.thinking_enabled);
  EXPECT_EQ(got.info.status, want.info.status);
  EXPECT_EQ(got.info.created_at, want.info.created_at);
  EXPECT_EQ(got.info.updated_at, want.info.updated_at);
  EXPECT_EQ(got.info.completed_at, want.info.completed_at);
  EXPECT_EQ(got.info.error_message, want.info.error_message);
  EXPECT_EQ(got.info.usage.input_tokens, want.info.usage.input_tokens);
  EXPECT_EQ(got.info.usage.output_tokens, want.info.usage.output_tokens);
  EXPECT_EQ(got.info.events, want.info.events);
  EXPECT_EQ(got.owner, want.owner);
  EXPECT_EQ(got.key, want.key);
  EXPECT_EQ(got.digest, want.digest);
  ASSERT_EQ(got.events.size(), want.events.size());
  for (std::size_t i = 0; i < want.events.size(); ++i) {
    EXPECT_EQ(got.events[i].type, want.events[i].type) << "event " << i + 1;
    EXPECT_EQ(got.events[i].json, want.events[i].json) << "event " << i + 1;
  }
}

std::string contents(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// The explanation of reading `dir`, which must fail; it names the file.
std::string refusal(const std::string& dir) {
  auto read = read_sqlite_store(dir);
  EXPECT_FALSE(read.ok());
  if (read.ok()) return {};
  EXPECT_NE(read.error().explanation.find(dir + "/spool.db"), std::string::npos) << read.error().explanation;
  return read.error().explanation;
}

TEST(SqliteStore, EveryStreamIsReadBackOldestFirst) {
  TempDir dir;
  StoredStream done = stream("done", StreamStatus::completed, kT0 + 5us, 5);
  done.info.thinking_enabled = true;
  done.info.completed_at = kT0 + 2'000'001us;
  done.info.usage = Usage{1234, 567};
  done.owner = "owner-1";
  done.key = "owner-1\nkey";
  done.digest = "9f86d081";
  done.events.front() = {"message_start", R"({"type":"message_start","message":{"content":[]}})"};
  done.events.back() = {"message_stop", "{}"};
  StoredStream failed = stream("failed", StreamStatus::error, kT0, 1);
  failed.info.completed_at = kT0 + 1us;
  failed.info.error_message = "interrupted by restart";
  failed.owner = "owner-2";
  const StoredStream waiting = stream("waiting", StreamStatus::pending, kT0 + 5us, 0);
  const StoredStream cancelled = stream("cancelled", StreamStatus::cancelled, kT0 + 9us, 2);
  {
    SqliteStoreFile file(dir.path);
    file.add(waiting);
    file.add(done);
    file.add(cancelled, 1);
    file.add(failed);
    file.add_events_row("removed", 1, testing::encode_events(done.events));
  }
  auto read = read_sqlite_store(dir.path);
  ASSERT_TRUE(read.ok()) << read.error().explanation;
  ASSERT_EQ(read->size(), 4u);
  expect_same((*read)[0], failed);
  expect_same((*read)[1], done);
  expect_same((*read)[2], waiting);
  expect_same((*read)[3], cancelled);
}

TEST(SqliteStore, WhatAKilledStoreLeftInItsWalIsReadAndNothingIsWritten) {
  TempDir dir;
  const StoredStream s = stream("s", StreamStatus::processing, kT0, 7);
  SqliteStoreFile file(dir.path + "/live");
  file.exec("PRAGMA wal_autocheckpoint=0");
  file.add(s);
  fs::create_directories(dir.path + "/killed");
  for (const char* name : {"spool.db", "spool.db-wal"}) {
    fs::copy_file(dir.path + "/live/" + name, dir.path + "/killed/" + name);
  }
  const std::string db = contents(dir.path + "/killed/spool.db");
  const std::string wal = contents(dir.path + "/killed/spool.db-wal");
  ASSERT_FALSE(wal.empty());
  auto read = read_sqlite_store(dir.path + "/killed");
  ASSERT_TRUE(read.ok()) << read.error().explanation;
  ASSERT_EQ(read->size(), 1u);
  expect_same(read->front(), s);
  EXPECT_EQ(contents(dir.path + "/killed/spool.db"), db);
  EXPECT_EQ(contents(dir.path + "/killed/spool.db-wal"), wal);
}

TEST(SqliteStore, AnSqliteFileWithoutTablesIsAnEmptyStore) {
  TempDir dir;
  { SqliteStoreFile file(dir.path, "", 0); }
  auto read = read_sqlite_store(dir.path);
  ASSERT_TRUE(read.ok()) << read.error().explanation;
  EXPECT_TRUE(read->empty());
}

TEST(SqliteStore, AFileThatIsNotADatabaseIsRefused) {
  TempDir dir;
  fs::create_directories(dir.path);
  { std::ofstream(dir.path + "/spool.db") << std::string(8192, 'g'); }
  EXPECT_NE(refusal(dir.path).find("is not a Spool database"), std::string::npos);
  fs::create_directories(dir.path + "/empty");
  EXPECT_NE(refusal(dir.path + "/empty").find("cannot open"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir.path + "/empty/spool.db"));
}

TEST(SqliteStore, AnotherProgramsDatabaseIsRefused) {
  TempDir dir;
  { SqliteStoreFile file(dir.path, "CREATE TABLE notes(text TEXT)", 0); }
  EXPECT_NE(refusal(dir.path).find("is an SQLite file, but not a Spool database"), std::string::npos);
}

TEST(SqliteStore, AnotherSchemaVersionIsRefused) {
  TempDir dir;
  { SqliteStoreFile file(dir.path, testing::kSqliteStoreSchema, 2); }
  EXPECT_NE(refusal(dir.path).find("has schema version 2; this Spool reads version 1"), std::string::npos);
}

TEST(SqliteStore, ADamagedLogIsRefused) {
  TempDir dir;
  const StoredStream s = stream("s", StreamStatus::completed, kT0, 4);
  {
    SqliteStoreFile file(dir.path + "/cut");
    file.add(s);
    file.exec("UPDATE events SET events = substr(events, 1, length(events) - 1) WHERE first = 3");  // events 3-4
  }
  EXPECT_NE(refusal(dir.path + "/cut").find("is corrupt: stream s has a damaged log from event 4"), std::string::npos);
  {
    SqliteStoreFile file(dir.path + "/gap");
    file.add(s);
    file.exec("DELETE FROM events WHERE first = 1");
  }
  EXPECT_NE(refusal(dir.path + "/gap").find("is corrupt: stream s has a damaged log from event 1"), std::string::npos);
  {
    SqliteStoreFile file(dir.path + "/status");
    file.add(s);
    file.exec("UPDATE streams SET status = 'finished'");
  }
  EXPECT_NE(refusal(dir.path + "/status").find("is corrupt: stream s has status finished"), std::string::npos);
}

}  // namespace
}  // namespace spool
