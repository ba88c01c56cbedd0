// Moving a data directory of the SQLite store (spool.db, before the log store) into the log store.
#pragma once

#include "core/result.hpp"
#include "store/log_store.hpp"

#include <cstddef>
#include <string>

namespace spool {

// Copies every stream of `dir`/spool.db (records, logs, Idempotency-Keys) into `to`, waits until
// they are written, then renames spool.db (and its -wal and -shm files) to *.migrated. Returns how
// many streams moved; 0 when there is no spool.db. Run again after a crash, it copies them again
// (a stream created twice keeps its second copy). An error names the file and says what to do.
Result<std::size_t> migrate_sqlite_store(const std::string& dir, LogStore& to);

}  // namespace spool
