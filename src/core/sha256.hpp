// SHA-256 (FIPS 180-4), for identities derived from secrets: no library needed below the http room.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace spool {

// The SHA-256 digest of `data`.
std::array<std::uint8_t, 32> sha256(std::string_view data);

// HMAC-SHA256 (RFC 2104) of `data` under `key`.
std::array<std::uint8_t, 32> hmac_sha256(std::string_view key, std::string_view data);

// The first `bytes` bytes of sha256(data) as lowercase hex (all 32 by default).
std::string sha256_hex(std::string_view data, std::size_t bytes = 32);

}  // namespace spool
