#include "store/migrate.hpp"

#include "store/sqlite_store.hpp"
#include "stream/event_log.hpp"

#include <chrono>
#include <filesystem>
#include <future>

namespace spool {

Result<std::size_t> migrate_sqlite_store(const std::string& dir, LogStore& to) {
  namespace fs = std::filesystem;
  const fs::path db = fs::path(dir) / "spool.db";
  std::error_code ec;
  if (!fs::exists(db, ec)) return std::size_t{0};
  auto fail = [&](const std::string& why) {
    return make_error(Errc::internal, "data directory " + dir + ": cannot move the streams of " + db.string() +
                                          " (written by an earlier Spool) into the log store: " + why +
                                          "; start an earlier Spool on it to read them, or move it aside");
  };
  auto streams = read_sqlite_store(dir);
  if (!streams) return fail(streams.error().explanation);
  for (const StoredStream& s : *streams) {
    to.create(s.info, s.owner, {});
    if (!s.events.empty()) {
      std::string frames;
      for (std::size_t i = 0; i < s.events.size(); ++i)
        append_frame(frames, s.events[i].type, s.events[i].json, EventId{i + 1});
      to.append(s.info, 1, s.events.size(), std::move(frames), StreamStore::Change::none, {});
    }
    if (!s.key.empty()) to.bind_key(s.info.id, s.key, s.digest, {});
  }
  std::promise<void> written;
  to.barrier([&written] { written.set_value(); });
  written.get_future().wait();
  if (auto failure = to.failure()) return fail(*failure);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const fs::path from = db.string() + suffix;
    if (!fs::exists(from, ec)) continue;
    fs::rename(from, from.string() + ".migrated", ec);
    if (ec) return fail("renaming " + from.string() + ": " + ec.message());
  }
  return streams->size();
}

}  // namespace spool
