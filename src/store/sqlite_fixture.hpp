// Test-only (for *_test.cpp): spool.db written with plain SQL, as the SQLite store wrote it before
// the log store, for the tests of its reader (sqlite_store.hpp) and of the migration.
#pragma once

#include "stream/stream_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace spool::testing {

// The SQLite store's schema, version 1.
inline constexpr const char* kSqliteStoreSchema = R"sql(
CREATE TABLE streams(
  id TEXT PRIMARY KEY,
  model TEXT NOT NULL,
  message_count INTEGER NOT NULL,
  thinking INTEGER NOT NULL,
  owner TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  completed_at INTEGER,
  error_message TEXT,
  input_tokens INTEGER NOT NULL DEFAULT 0,
  output_tokens INTEGER NOT NULL DEFAULT 0,
  idem_key TEXT,
  idem_digest TEXT
) WITHOUT ROWID;
CREATE TABLE events(
  stream TEXT NOT NULL,
  first INTEGER NOT NULL,
  events BLOB NOT NULL,
  PRIMARY KEY(stream, first)
) WITHOUT ROWID;
)sql";

// A row of the `events` table: per event, the type's length and the JSON's length (4 bytes each,
// little-endian), then their bytes.
inline std::string encode_events(std::span<const NewEvent> events) {
  std::string out;
  auto put = [&](std::string_view v) {
    const auto n = static_cast<std::uint32_t>(v.size());
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  };
  for (const auto& e : events) {
    put(e.type);
    put(e.json);
    out += e.type;
    out += e.json;
  }
  return out;
}

// `dir`/spool.db, created with `dir` in WAL mode as the SQLite store created it, and kept open.
class SqliteStoreFile {
 public:
  // `schema` and `version` as the store wrote them unless a test says otherwise.
  explicit SqliteStoreFile(const std::string& dir, const char* schema = kSqliteStoreSchema, int version = 1) {
    std::filesystem::create_directories(dir);
    const std::string file = (std::filesystem::path(dir) / "spool.db").string();
    if (sqlite3_open(file.c_str(), &db_) != SQLITE_OK) ADD_FAILURE() << file << ": " << sqlite3_errmsg(db_);
    exec("PRAGMA journal_mode=WAL");
    exec(schema);
    exec("PRAGMA user_version=" + std::to_string(version));
  }
  ~SqliteStoreFile() { sqlite3_close(db_); }
  SqliteStoreFile(const SqliteStoreFile&) = delete;
  SqliteStoreFile& operator=(const SqliteStoreFile&) = delete;

  // Runs `sql` (any number of statements); a test failure when SQLite refuses it.
  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) ADD_FAILURE() << sql << ": " << err;
    sqlite3_free(err);
  }

  // Stores `s`: its record, owner and key (NULL when empty), and its events `per_row` to a row
  // (the store wrote a stream's events of one batch as one row).
  void add(const StoredStream& s, std::size_t per_row = 2) {
    Row row(db_,
            "INSERT INTO streams(id, model, message_count, thinking, owner, status, created_at, updated_at, "
            "completed_at, error_message, input_tokens, output_tokens, idem_key, idem_digest) "
            "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)");
    const StreamInfo& i = s.info;
    row.text(1, i.id).text(2, i.model).integer(3, i.message_count).integer(4, i.thinking_enabled ? 1 : 0);
    row.text(5, s.owner).text(6, std::string(to_string(i.status))).integer(7, to_us(i.created_at));
    row.integer(8, to_us(i.updated_at));
    if (i.completed_at) row.integer(9, to_us(*i.completed_at));
    if (i.error_message) row.text(10, *i.error_message);
    row.integer(11, i.usage.input_tokens).integer(12, i.usage.output_tokens);
    if (!s.key.empty()) row.text(13, s.key).text(14, s.digest);
    row.run();
    const std::span<const NewEvent> events(s.events);
    for (std::size_t first = 0; first < events.size(); first += per_row) {
      add_events_row(i.id, static_cast<std::int64_t>(first + 1),
                     encode_events(events.subspan(first, std::min(per_row, events.size() - first))));
    }
  }

  // Stores one `events` row as given.
  void add_events_row(const std::string& id, std::int64_t first, const std::string& blob) {
    Row(db_, "INSERT INTO events(stream, first, events) VALUES(?1, ?2, ?3)")
        .text(1, id)
        .integer(2, first)
        .blob(3, blob)
        .run();
  }

 private:
  static std::int64_t to_us(SysTime t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  }

  // One statement to bind and run once; unbound parameters are NULL.
  class Row {
   public:
    Row(sqlite3* db, const char* sql) : db_(db) {
      if (sqlite3_prepare_v2(db, sql, -1, &st_, nullptr) != SQLITE_OK)
        ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
    }
    ~Row() { sqlite3_finalize(st_); }
    Row(const Row&) = delete;
    Row& operator=(const Row&) = delete;
    Row& text(int i, const std::string& v) {
      sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
      return *this;
    }
    Row& blob(int i, const std::string& v) {
      sqlite3_bind_blob(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
      return *this;
    }
    Row& integer(int i, std::int64_t v) {
      sqlite3_bind_int64(st_, i, v);
      return *this;
    }
    void run() {
      if (sqlite3_step(st_) != SQLITE_DONE) ADD_FAILURE() << sqlite3_errmsg(db_);
    }

   private:
    sqlite3* db_;
    sqlite3_stmt* st_ = nullptr;
  };

  sqlite3* db_ = nullptr;
};

}  // namespace spool::testing
