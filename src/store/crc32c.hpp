// CRC-32C (Castagnoli), the checksum of the store's records: SSE 4.2's instruction where the CPU
// has it, a table otherwise.
#pragma once

#include <cstdint>
#include <string_view>

namespace spool {

// The CRC-32C of `data`, continuing from `crc` (0 to start).
std::uint32_t crc32c(std::string_view data, std::uint32_t crc = 0);

}  // namespace spool
