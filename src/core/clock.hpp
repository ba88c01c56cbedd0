// Wall-clock timestamps as the API shows them.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace spool {

using SysTime = std::chrono::system_clock::time_point;

// UTC RFC 3339 with microseconds and 'Z', e.g. 2026-11-24T18:11:37.123456Z.
std::string rfc3339(SysTime t);

// rfc3339(now()).
std::string now_rfc3339();

}  // namespace spool
