// Structured logs on spdlog: a message with key=value fields, written as text or as one JSON
// object per line (log_format). Plain spdlog calls elsewhere come out in the same format.
#pragma once

#include <spdlog/common.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace spool {

// One field of a log line.
using LogField = std::pair<std::string_view, std::string_view>;

// Logs go to stderr. Sets the level (debug, info, warn, error) and the format: "text" (time level msg key=value ...)
// or "json" ({"time":...,"level":...,"msg":...,"key":"value",...}, every value escaped).
void setup_logging(const std::string& level, const std::string& format);

// True when a line at `level` would be written (build costly fields only then).
bool log_enabled(spdlog::level::level_enum level);

// Logs `msg` with `fields` at `level`.
void log_event(spdlog::level::level_enum level, std::string_view msg, std::initializer_list<LogField> fields);

}  // namespace spool
