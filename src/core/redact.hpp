// Keeping credentials out of what clients and logs see.
#pragma once

#include <string>
#include <string_view>

namespace spool {

// `url` with its userinfo (user:password@) and the values of credential-like query parameters
// (api-key, key, token, access_token, secret, password, sig, auth... in any case) replaced by ***.
// Works on any text that is or starts like a URL; what it cannot parse is returned unchanged.
std::string redact_url(std::string_view url);

}  // namespace spool
