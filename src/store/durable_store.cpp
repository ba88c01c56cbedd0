#include "store/durable_store.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <fcntl.h>
#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <iterator>
#include <mutex>
#include <span>
#include <thread>
#include <unordered_map>

namespace spool {
namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
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

// Timestamps are stored as microseconds since the epoch, as exact as /status shows them.
std::int64_t to_us(SysTime t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
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

// A run of consecutive events of one stream, as one row: per event, the type's length and the
// JSON's length (4 bytes each, little-endian) and then their bytes.
void encode_events(std::span<const NewEvent> events, std::string& out) {
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
}

// The events of one row; false when it is malformed.
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
  Statement() = default;
  Statement(sqlite3* db, const char* sql) { sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st_, nullptr); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement(Statement&& o) noexcept : st_(std::exchange(o.st_, nullptr)) {}
  Statement& operator=(Statement&& o) noexcept {
    std::swap(st_, o.st_);
    return *this;
  }
  ~Statement() { sqlite3_finalize(st_); }
  sqlite3_stmt* get() const { return st_; }
  explicit operator bool() const { return st_ != nullptr; }

  // Binds in order: text, integers, or null (std::nullopt).
  Statement& text(int i, std::string_view v) {
    sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& blob(int i, std::string_view v) {
    sqlite3_bind_blob(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& integer(int i, std::int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  Statement& null(int i) {
    sqlite3_bind_null(st_, i);
    return *this;
  }
  // Steps to completion; the SQLite result code (SQLITE_DONE on success).
  int run() {
    const int rc = sqlite3_step(st_);
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
    return rc;
  }

 private:
  sqlite3_stmt* st_ = nullptr;
};

// One queued write.
struct Op {
  enum class Kind { create, append, update, bind, remove, barrier };
  Kind kind = Kind::barrier;
  std::string id;
  // create: the record's fixed fields
  std::string model, owner;
  int message_count = 0;
  bool thinking = false;
  std::int64_t created_us = 0;
  // create, update: the record's changing fields
  StreamStatus status{};
  std::int64_t updated_us = 0, completed_us = -1;
  std::optional<std::string> error_message;
  Usage usage;
  // bind
  std::string key, digest;
  // append: positions first .. first + count - 1, encoded by encode_events
  std::uint64_t first = 0, count = 0;
  std::string blob;
  DurableStore::Written done;
};

// Sets the changing fields of `op` from `info`.
void take_record(Op& op, const StreamInfo& info) {
  op.status = info.status;
  op.updated_us = to_us(info.updated_at);
  op.completed_us = info.completed_at ? to_us(*info.completed_at) : -1;
  op.error_message = info.error_message;
  op.usage = info.usage;
}

// Copies the changing fields of `from` (an update) into `to`.
void take_record(Op& to, const Op& from) {
  to.status = from.status;
  to.updated_us = from.updated_us;
  to.completed_us = from.completed_us;
  to.error_message = from.error_message;
  to.usage = from.usage;
}

}  // namespace

struct DurableStore::Impl {
  DurableStoreOptions opts;
  sqlite3* db = nullptr;
  int lock_fd = -1;
  Statement insert_stream, insert_event, update_stream, bind_stream, delete_events, delete_stream;
  Statement begin, commit, rollback;

  std::mutex mu;
  std::condition_variable wake;
  std::deque<Op> queue;
  bool closing = false;
  std::thread writer;
  std::atomic<std::uint64_t> commits{0};
  bool idle = false;                   // the writer waits for work (guarded by mu)
  std::optional<std::string> failing;  // the last write's error while writes fail (guarded by mu)

  ~Impl() {
    {
      std::lock_guard lk(mu);
      closing = true;
    }
    wake.notify_all();
    if (writer.joinable()) writer.join();
    insert_stream = {};
    insert_event = {};
    update_stream = {};
    bind_stream = {};
    delete_events = {};
    delete_stream = {};
    begin = {};
    commit = {};
    rollback = {};
    if (db != nullptr) sqlite3_close_v2(db);
    if (lock_fd >= 0) ::close(lock_fd);
  }

  std::string where() const { return (std::filesystem::path(opts.dir) / "spool.db").string(); }
  std::string db_error() const { return db != nullptr ? sqlite3_errmsg(db) : "out of memory"; }

  Status exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) == SQLITE_OK) return Ok{};
    std::string msg = err != nullptr ? err : db_error();
    sqlite3_free(err);
    return make_error(Errc::internal, msg);
  }

  // One row, one integer column.
  std::optional<std::int64_t> query_int(const char* sql) {
    Statement st(db, sql);
    if (!st || sqlite3_step(st.get()) != SQLITE_ROW) return std::nullopt;
    return sqlite3_column_int64(st.get(), 0);
  }

  Error fail(const std::string& what) const {
    return make_error(Errc::internal, "data directory " + opts.dir + ": " + what);
  }

  Status open() {
    std::error_code ec;
    std::filesystem::create_directories(opts.dir, ec);
    if (ec) return fail("cannot be created: " + ec.message());
    if (opts.lock) {
      const std::string lock_path = (std::filesystem::path(opts.dir) / "LOCK").string();
      lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (lock_fd < 0) return fail(std::string("is not writable: ") + std::strerror(errno));
      if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) return fail("is in use by another Spool process");
    }
    if (sqlite3_open_v2(where().c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
      return fail("cannot open " + where() + ": " + db_error());
    }
    sqlite3_extended_result_codes(db, 1);
    // Reading the schema is the first access: a file that is not a database fails here.
    const auto version = query_int("PRAGMA user_version");
    if (!version) return fail(where() + " is not a Spool database (" + db_error() + ")");
    if (auto st = exec("PRAGMA journal_mode=WAL"); !st)
      return fail("cannot use " + where() + ": " + st.error().explanation);
    const char* sync = opts.fsync_each ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL";
    if (auto st = exec(sync); !st) return fail(st.error().explanation);
    if (*version == 0) {
      const auto tables = query_int("SELECT count(*) FROM sqlite_schema");
      if (tables.value_or(1) != 0) return fail(where() + " is an SQLite file, but not a Spool database");
      if (auto st = exec(kSchema); !st)
        return fail("cannot create the schema in " + where() + ": " + st.error().explanation);
      if (auto st = exec("PRAGMA user_version=1"); !st) return fail(st.error().explanation);
    } else if (*version != kSchemaVersion) {
      return fail(where() + " has schema version " + std::to_string(*version) + "; this Spool reads version " +
                  std::to_string(kSchemaVersion));
    }
    Statement check(db, "PRAGMA quick_check");
    if (!check || sqlite3_step(check.get()) != SQLITE_ROW) return fail(where() + " cannot be checked: " + db_error());
    if (const std::string verdict = column_text(check.get(), 0); verdict != "ok") {
      return fail(where() + " is corrupt: " + verdict);
    }
    insert_stream = Statement(db,
                              "INSERT OR REPLACE INTO streams(id, model, message_count, thinking, owner, created_at, "
                              "status, updated_at, completed_at, error_message, input_tokens, output_tokens) "
                              "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
    insert_event = Statement(db, "INSERT OR IGNORE INTO events(stream, first, events) VALUES(?1, ?2, ?3)");
    update_stream = Statement(db,
                              "UPDATE streams SET status = ?2, updated_at = ?3, completed_at = ?4, error_message = ?5, "
                              "input_tokens = ?6, output_tokens = ?7 WHERE id = ?1");
    bind_stream = Statement(db, "UPDATE streams SET idem_key = ?2, idem_digest = ?3 WHERE id = ?1");
    delete_events = Statement(db, "DELETE FROM events WHERE stream = ?1");
    delete_stream = Statement(db, "DELETE FROM streams WHERE id = ?1");
    begin = Statement(db, "BEGIN IMMEDIATE");
    commit = Statement(db, "COMMIT");
    rollback = Statement(db, "ROLLBACK");
    for (const auto* s : {&insert_stream, &insert_event, &update_stream, &bind_stream, &delete_events, &delete_stream,
                          &begin, &commit, &rollback}) {
      if (!*s) return fail("cannot prepare statements on " + where() + ": " + db_error());
    }
    writer = std::thread([this] { write_loop(); });
    return Ok{};
  }

  Result<std::vector<StoredStream>> load_all() {
    std::vector<StoredStream> out;
    std::unordered_map<std::string, std::size_t> index;
    Statement streams(db,
                      "SELECT id, model, message_count, thinking, owner, status, created_at, updated_at, completed_at, "
                      "error_message, input_tokens, output_tokens, idem_key, idem_digest FROM streams "
                      "ORDER BY created_at, id");
    if (!streams) return fail("cannot read " + where() + ": " + db_error());
    int rc = 0;
    while ((rc = sqlite3_step(streams.get())) == SQLITE_ROW) {
      sqlite3_stmt* st = streams.get();
      StoredStream s;
      s.info.id = column_text(st, 0);
      s.info.model = column_text(st, 1);
      s.info.message_count = sqlite3_column_int(st, 2);
      s.info.thinking_enabled = sqlite3_column_int(st, 3) != 0;
      s.owner = column_text(st, 4);
      const auto status = parse_status(column_text(st, 5));
      if (!status) return fail(where() + " is corrupt: stream " + s.info.id + " has status " + column_text(st, 5));
      s.info.status = *status;
      s.info.created_at = from_us(sqlite3_column_int64(st, 6));
      s.info.updated_at = from_us(sqlite3_column_int64(st, 7));
      if (sqlite3_column_type(st, 8) != SQLITE_NULL) s.info.completed_at = from_us(sqlite3_column_int64(st, 8));
      if (sqlite3_column_type(st, 9) != SQLITE_NULL) s.info.error_message = column_text(st, 9);
      s.info.usage = Usage{sqlite3_column_int64(st, 10), sqlite3_column_int64(st, 11)};
      s.key = column_text(st, 12);
      s.digest = column_text(st, 13);
      index.emplace(s.info.id, out.size());
      out.push_back(std::move(s));
    }
    if (rc != SQLITE_DONE) return fail("cannot read " + where() + ": " + db_error());
    Statement events(db, "SELECT stream, first, events FROM events ORDER BY stream, first");
    if (!events) return fail("cannot read " + where() + ": " + db_error());
    while ((rc = sqlite3_step(events.get())) == SQLITE_ROW) {
      sqlite3_stmt* st = events.get();
      auto it = index.find(column_text(st, 0));
      if (it == index.end()) continue;  // a log whose record is gone (removed in the same batch)
      StoredStream& s = out[it->second];
      const auto first = static_cast<std::uint64_t>(sqlite3_column_int64(st, 1));
      const auto* bytes = static_cast<const char*>(sqlite3_column_blob(st, 2));
      const std::string_view row(bytes, static_cast<std::size_t>(sqlite3_column_bytes(st, 2)));
      if (first != s.events.size() + 1 || !decode_events(row, s.events)) {
        return fail(where() + " is corrupt: stream " + s.info.id + " has a damaged log from event " +
                    std::to_string(s.events.size() + 1));
      }
    }
    if (rc != SQLITE_DONE) return fail("cannot read " + where() + ": " + db_error());
    for (auto& s : out) s.info.events = s.events.size();
    return out;
  }

  void push(Op op) {
    bool notify = false;
    {
      std::lock_guard lk(mu);
      if (closing) return;
      queue.push_back(std::move(op));
      notify = idle;  // a busy writer takes it with its next batch: no wake-up needed
    }
    if (notify) wake.notify_one();
  }

  // Binds the record's changing fields of `op` to parameters first .. first + 5 of `st`: status,
  // updated_at, completed_at, error_message, input_tokens, output_tokens.
  static Statement& bind_record(Statement& st, int first, const Op& op) {
    st.text(first, to_string(op.status)).integer(first + 1, op.updated_us);
    if (op.completed_us >= 0) {
      st.integer(first + 2, op.completed_us);
    } else {
      st.null(first + 2);
    }
    if (op.error_message) {
      st.text(first + 3, *op.error_message);
    } else {
      st.null(first + 3);
    }
    return st.integer(first + 4, op.usage.input_tokens).integer(first + 5, op.usage.output_tokens);
  }

  // Applies one write inside the open transaction; false when SQLite refused it.
  bool apply(const Op& op) {
    switch (op.kind) {
      case Op::Kind::create:
        insert_stream.text(1, op.id)
            .text(2, op.model)
            .integer(3, op.message_count)
            .integer(4, op.thinking ? 1 : 0)
            .text(5, op.owner)
            .integer(6, op.created_us);
        return bind_record(insert_stream, 7, op).run() == SQLITE_DONE;
      case Op::Kind::append:
        return insert_event.text(1, op.id).integer(2, static_cast<std::int64_t>(op.first)).blob(3, op.blob).run() ==
               SQLITE_DONE;
      case Op::Kind::update:
        return bind_record(update_stream.text(1, op.id), 2, op).run() == SQLITE_DONE;
      case Op::Kind::bind:
        return bind_stream.text(1, op.id).text(2, op.key).text(3, op.digest).run() == SQLITE_DONE;
      case Op::Kind::remove:
        return delete_events.text(1, op.id).run() == SQLITE_DONE && delete_stream.text(1, op.id).run() == SQLITE_DONE;
      case Op::Kind::barrier:
        return true;
    }
    return true;
  }

  // The writes of `batch` that matter, in order: a stream's consecutive appends become one (one
  // row), and a record update that a later one of the same stream replaces is left out. Merged
  // appends go into the first of them; a create or remove of the stream ends a run.
  static std::vector<const Op*> compact(std::deque<Op>& batch) {
    std::unordered_map<std::string_view, Op*> open_run;  // stream → its append being extended
    std::unordered_map<std::string_view, std::size_t> last_update;
    std::unordered_map<std::string_view, Op*> created;  // streams this batch creates
    std::vector<Op*> kept;
    kept.reserve(batch.size());
    for (auto& op : batch) {
      const std::string_view id = op.id;
      switch (op.kind) {
        case Op::Kind::append: {
          auto it = open_run.find(id);
          Op* run = it == open_run.end() ? nullptr : it->second;
          if (run != nullptr && run->first + run->count == op.first) {
            run->blob += op.blob;
            run->count += op.count;
            continue;
          }
          open_run[id] = &op;
          break;
        }
        case Op::Kind::update:
          if (auto c = created.find(id); c != created.end()) {  // created in this batch: one insert says all
            take_record(*c->second, op);
            continue;
          }
          if (auto it = last_update.find(id); it != last_update.end()) kept[it->second] = nullptr;
          last_update[id] = kept.size();
          break;
        case Op::Kind::create:
          open_run.erase(id);
          last_update.erase(id);
          created[id] = &op;
          break;
        case Op::Kind::remove:
          open_run.erase(id);
          last_update.erase(id);
          created.erase(id);
          break;
        default:
          break;
      }
      kept.push_back(&op);
    }
    std::vector<const Op*> out;
    out.reserve(kept.size());
    for (Op* op : kept) {
      if (op != nullptr) out.push_back(op);
    }
    return out;
  }

  // Takes every queued write, applies them as one transaction (retried until it commits), then
  // runs their callbacks; until closing and drained.
  void write_loop() {
    std::chrono::milliseconds backoff{100};
    for (;;) {
      std::deque<Op> batch;
      {
        std::unique_lock lk(mu);
        idle = true;
        wake.wait(lk, [&] { return closing || !queue.empty(); });
        idle = false;
        if (queue.empty()) return;  // closing, everything written
        batch.swap(queue);
      }
      const std::vector<const Op*> writes = compact(batch);
      bool written = false;
      for (int attempt = 1;; ++attempt) {
        bool ok = begin.run() == SQLITE_DONE;
        for (auto it = writes.begin(); ok && it != writes.end(); ++it) ok = apply(**it);
        if (ok) ok = commit.run() == SQLITE_DONE;
        if (ok) {
          written = true;
          break;
        }
        const std::string why = db_error();
        rollback.run();
        bool leaving = false;
        {
          std::lock_guard lk(mu);
          failing = "cannot write to " + where() + ": " + why;
          leaving = closing;
        }
        if (leaving && attempt >= 3) {  // the process is exiting: say what is lost rather than hang
          spdlog::error("durable store: giving up on {} queued write(s) to {} at shutdown: {}", batch.size(), where(),
                        why);
          break;
        }
        spdlog::error("durable store: cannot write to {}: {}; retrying in {} ms", where(), why, backoff.count());
        std::this_thread::sleep_for(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
      }
      if (!written) continue;  // shutdown: nobody waits for these any more
      backoff = std::chrono::milliseconds(100);
      {
        std::lock_guard lk(mu);
        failing.reset();
      }
      commits.fetch_add(1, std::memory_order_relaxed);
      for (auto& op : batch) {
        if (op.done) op.done();
      }
    }
  }
};

DurableStore::DurableStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

DurableStore::~DurableStore() = default;

Result<std::unique_ptr<DurableStore>> DurableStore::open(const DurableStoreOptions& opts) {
  auto impl = std::make_unique<Impl>();
  impl->opts = opts;
  if (auto st = impl->open(); !st) return st.error();
  return std::unique_ptr<DurableStore>(new DurableStore(std::move(impl)));
}

Result<std::vector<StoredStream>> DurableStore::load_all() { return impl_->load_all(); }

void DurableStore::create(const StreamInfo& info, const std::string& owner, Written done) {
  Op op;
  op.kind = Op::Kind::create;
  op.id = info.id;
  op.model = info.model;
  op.owner = owner;
  op.message_count = info.message_count;
  op.thinking = info.thinking_enabled;
  op.created_us = to_us(info.created_at);
  take_record(op, info);
  op.done = std::move(done);
  impl_->push(std::move(op));
}

void DurableStore::append(const std::string& id, std::uint64_t first_position, std::uint64_t count, std::string frames,
                          const StreamInfo* record, Written done) {
  // Frames back to events ("event: T\ndata: J\nid: N\n\n"): this store keeps them apart.
  std::vector<NewEvent> events;
  std::string_view rest = frames;
  while (events.size() < count && rest.starts_with("event: ")) {
    const auto data = rest.find("\ndata: ");
    const auto id_at = rest.find("\nid: ", data);
    const auto end = rest.find("\n\n", id_at);
    if (data == std::string_view::npos || id_at == std::string_view::npos || end == std::string_view::npos) break;
    events.push_back(NewEvent{std::string(rest.substr(7, data - 7)), std::string(rest.substr(data + 7, id_at - data - 7))});
    rest.remove_prefix(end + 2);
  }
  Op op;
  op.kind = Op::Kind::append;
  op.id = id;
  op.first = first_position;
  op.count = events.size();
  encode_events(events, op.blob);
  op.done = record != nullptr ? Written{} : std::move(done);
  impl_->push(std::move(op));
  if (record != nullptr) update(*record, std::move(done));
}

void DurableStore::update(const StreamInfo& info, Written done) {
  Op op;
  op.kind = Op::Kind::update;
  op.id = info.id;
  take_record(op, info);
  op.done = std::move(done);
  impl_->push(std::move(op));
}

void DurableStore::bind_key(const std::string& id, const std::string& key, const std::string& digest, Written done) {
  Op op;
  op.kind = Op::Kind::bind;
  op.id = id;
  op.key = key;
  op.digest = digest;
  op.done = std::move(done);
  impl_->push(std::move(op));
}

void DurableStore::remove(const std::string& id, Written done) {
  Op op;
  op.kind = Op::Kind::remove;
  op.id = id;
  op.done = std::move(done);
  impl_->push(std::move(op));
}

void DurableStore::barrier(Written done) {
  Op op;
  op.done = std::move(done);
  impl_->push(std::move(op));
}

void DurableStore::close() {
  {
    std::lock_guard lk(impl_->mu);
    impl_->closing = true;
  }
  impl_->wake.notify_all();
  if (impl_->writer.joinable()) impl_->writer.join();
}

std::optional<std::string> DurableStore::failure() const {
  std::lock_guard lk(impl_->mu);
  return impl_->failing;
}

std::uint64_t DurableStore::commits() const { return impl_->commits.load(std::memory_order_relaxed); }

}  // namespace spool
