// Read tokens (SPEC §6): a capability to watch one incarnation of one stream, for a browser that
// cannot send the secret (EventSource sets no headers).
#pragma once

#include "core/clock.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spool {

// Issues and checks read tokens: "<expiry unix seconds>.<incarnation>.<32 hex of an HMAC-SHA256
// over the id, incarnation and expiry>". Nothing is stored: any instance with the same key checks
// any token, also after a restart.
class ReadTokens {
 public:
  // Tokens signed with `key` (secret bytes), valid for `ttl` after they are issued.
  ReadTokens(std::string key, std::chrono::seconds ttl);

  // The key used when none is configured: derived from the auth secrets (order does not matter),
  // so instances sharing their secrets share it and a restart keeps it.
  static std::string key_from_secrets(std::vector<std::string> secrets);

  // A token for reading incarnation `incarnation` of stream `id`, issued at `now`.
  std::string issue(std::string_view id, std::uint32_t incarnation, SysTime now) const;

  // The incarnation `token` lets its holder read of stream `id`, or nullopt when the token is
  // malformed, forged, expired at `now` or issued for another id.
  std::optional<std::uint32_t> check(std::string_view token, std::string_view id, SysTime now) const;

 private:
  std::string mac(std::string_view id, std::uint32_t incarnation, std::int64_t expiry) const;

  std::string key_;
  std::chrono::seconds ttl_;
};

}  // namespace spool
