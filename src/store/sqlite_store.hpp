// Reading a data directory of the SQLite store (spool.db, written by Spool before the log store),
// once, to move it into the log store (migrate.hpp). The only code that includes sqlite3.h.
#pragma once

#include "core/result.hpp"
#include "stream/stream_store.hpp"

#include <string>
#include <vector>

namespace spool {

// Every stream of `dir`/spool.db with its record, owner, Idempotency-Key and log, oldest first;
// the file is opened read-only, never created. An error names the file: missing, not a Spool
// database (schema version 1), corrupt, or holding a damaged log.
Result<std::vector<StoredStream>> read_sqlite_store(const std::string& dir);

}  // namespace spool
