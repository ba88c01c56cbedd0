#include "store/sqlite_store.hpp"

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace spool {
namespace {

// The only schema the SQLite store wrote (sqlite_fixture.hpp writes it for tests): `streams`, a
// row per stream, and `events`, a row per run of a stream's consecutive events, keyed by the first.
constexpr int kSchemaVersion = 1;

Error fail(const std::string& what) { return make_error(Errc::internal, what); }

// Timestamps were stored as microseconds since the epoch.
SysTime from_us(std::int64_t us) {
  return SysTime(std::chrono::duration_cast<SysTime::duration>(std::chrono::microseconds(us)));
}

std::optional<StreamStatus> parse_status(std::string_view s) {
  for (auto st : {StreamStatus::pending, StreamStatus::processing, StreamStatus::completed, StreamStatus::cancelled,
                  StreamStatus::error}) {
    if (to_string(st) == s) return st;
  }
  return std::nullopt;
}

// Appends the events of one `events` row to `out`: per event, the type's length and the JSON's
// length (4 bytes each, little-endian) and then their bytes. False when the row is malformed.
bool decode_events(std::string_view in, std::vector<NewEvent>& out) {
  auto get = [&](std::uint32_t& n) {
    if (in.size() < 4) return false;
    n = 0;
    for (int i = 0; i < 4; ++i) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
    in.remove_prefix(4);
    return true;
  };
  while (!in.empty()) {
    std::uint32_t type_len = 0;
    std::uint32_t json_len = 0;
    if (!get(type_len) || !get(json_len) || in.size() < std::size_t{type_len} + json_len) return false;
    out.push_back(NewEvent{std::string(in.substr(0, type_len)), std::string(in.substr(type_len, json_len))});
    in.remove_prefix(std::size_t{type_len} + json_len);
  }
  return true;
}

std::string column_text(sqlite3_stmt* st, int i) {
  const auto* p = sqlite3_column_text(st, i);
  return p == nullptr
             ? std::string()
             : std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(st, i)));
}

// A prepared statement, finalized when it goes.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &st_, nullptr); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(st_); }
  sqlite3_stmt* get() const { return st_; }
  explicit operator bool() const { return st_ != nullptr; }
  // The next row: SQLITE_ROW, SQLITE_DONE at the end, or an error code.
  int step() { return sqlite3_step(st_); }

 private:
  sqlite3_stmt* st_ = nullptr;
};

// One read of one spool.db.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  ~Reader() { sqlite3_close_v2(db_); }

  Result<std::vector<StoredStream>> read() {
    auto spool = open();
    if (!spool) return spool.error();
    std::vector<StoredStream> out;
    if (!*spool) return out;
    if (auto st = read_streams(out); !st) return st.error();
    if (auto st = read_events(out); !st) return st.error();
    for (auto& s : out) s.info.events = s.events.size();
    return out;
  }

 private:
  std::string db_error() const { return db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory"; }

  // One row, one integer column.
  std::optional<std::int64_t> query_int(const char* sql) {
    Statement st(db_, sql);
    if (!st || st.step() != SQLITE_ROW) return std::nullopt;
    return sqlite3_column_int64(st.get(), 0);
  }

  // Opens the file and checks it is a sound Spool database; false when it is an empty one (the
  // SQLite store took an SQLite file without tables as a new store).
  Result<bool> open() {
    if (sqlite3_open_v2(file_.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      return fail("cannot open " + file_ + ": " + db_error());
    }
    sqlite3_extended_result_codes(db_, 1);
    // Reading the schema is the first access: a file that is not a database fails here.
    const auto version = query_int("PRAGMA user_version");
    if (!version) return fail(file_ + " is not a Spool database (" + db_error() + ")");
    if (*version == 0) {
      if (query_int("SELECT count(*) FROM sqlite_schema").value_or(1) == 0) return false;
      return fail(file_ + " is an SQLite file, but not a Spool database");
    }
    if (*version != kSchemaVersion) {
      return fail(file_ + " has schema version " + std::to_string(*version) + "; this Spool reads version " +
                  std::to_string(kSchemaVersion));
    }
    Statement check(db_, "PRAGMA quick_check");
    if (!check || check.step() != SQLITE_ROW) return fail(file_ + " cannot be checked: " + db_error());
    if (const std::string verdict = column_text(check.get(), 0); verdict != "ok") {
      return fail(file_ + " is corrupt: " + verdict);
    }
    return true;
  }

  // Appends every stream's record to `out`, oldest first.
  Status read_streams(std::vector<StoredStream>& out) {
    Statement streams(db_,
                      "SELECT id, model, message_count, thinking, owner, status, created_at, updated_at, completed_at, "
                      "error_message, input_tokens, output_tokens, idem_key, idem_digest FROM streams "
                      "ORDER BY created_at, id");
    if (!streams) return fail("cannot read " + file_ + ": " + db_error());
    int rc = 0;
    while ((rc = streams.step()) == SQLITE_ROW) {
      sqlite3_stmt* st = streams.get();
      StoredStream s;
      s.info.id = column_text(st, 0);
      s.info.model = column_text(st, 1);
      s.info.message_count = sqlite3_column_int(st, 2);
      s.info.thinking_enabled = sqlite3_column_int(st, 3) != 0;
      s.owner = column_text(st, 4);
      const auto status = parse_status(column_text(st, 5));
      if (!status) return fail(file_ + " is corrupt: stream " + s.info.id + " has status " + column_text(st, 5));
      s.info.status = *status;
      s.info.created_at = from_us(sqlite3_column_int64(st, 6));
      s.info.updated_at = from_us(sqlite3_column_int64(st, 7));
      if (sqlite3_column_type(st, 8) != SQLITE_NULL) s.info.completed_at = from_us(sqlite3_column_int64(st, 8));
      if (sqlite3_column_type(st, 9) != SQLITE_NULL) s.info.error_message = column_text(st, 9);
      s.info.usage = Usage{sqlite3_column_int64(st, 10), sqlite3_column_int64(st, 11)};
      s.key = column_text(st, 12);
      s.digest = column_text(st, 13);
      out.push_back(std::move(s));
    }
    if (rc != SQLITE_DONE) return fail("cannot read " + file_ + ": " + db_error());
    return Ok{};
  }

  // Fills in the logs of `streams`; each must run from position 1 without a gap.
  Status read_events(std::vector<StoredStream>& streams) {
    std::unordered_map<std::string_view, StoredStream*> by_id;
    for (auto& s : streams) by_id.emplace(s.info.id, &s);
    Statement events(db_, "SELECT stream, first, events FROM events ORDER BY stream, first");
    if (!events) return fail("cannot read " + file_ + ": " + db_error());
    int rc = 0;
    while ((rc = events.step()) == SQLITE_ROW) {
      sqlite3_stmt* st = events.get();
      auto it = by_id.find(column_text(st, 0));
      if (it == by_id.end()) continue;  // a log without its record: nothing to move
      StoredStream& s = *it->second;
      const auto first = static_cast<std::uint64_t>(sqlite3_column_int64(st, 1));
      const auto* bytes = static_cast<const char*>(sqlite3_column_blob(st, 2));
      const std::string_view row(bytes, static_cast<std::size_t>(sqlite3_column_bytes(st, 2)));
      if (first != s.events.size() + 1 || !decode_events(row, s.events)) {
        return fail(file_ + " is corrupt: stream " + s.info.id + " has a damaged log from event " +
                    std::to_string(s.events.size() + 1));
      }
    }
    if (rc != SQLITE_DONE) return fail("cannot read " + file_ + ": " + db_error());
    return Ok{};
  }

  std::string file_;
  sqlite3* db_ = nullptr;
};

}  // namespace

Result<std::vector<StoredStream>> read_sqlite_store(const std::string& dir) {
  return Reader((std::filesystem::path(dir) / "spool.db").string()).read();
}

}  // namespace spool
