// What a server without auth accepts of a request's Host and Origin (§6): a page on another site
// must neither read it through DNS rebinding nor change jobs with a cross-site form.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spool {

// The names a server answers to besides IP literals and localhost.
struct OriginPolicy {
  std::string listen_host;                   // --host (an IP literal or a name)
  std::vector<std::string> allowed_hosts;    // more names; "*" accepts any Host, ".example.com" its subdomains
  std::vector<std::string> allowed_origins;  // origins whose pages may send unsafe methods ("*": any)
};

// Why a request with this Host header is refused, or nullopt when it is accepted: an IP literal,
// localhost (or *.localhost), listen_host or an allowed_hosts name, with any port. No Host (HTTP/1.0) is accepted.
std::optional<std::string> refused_host(const OriginPolicy& p, const std::string* host);

// Why a request with `method` from `origin` (the Origin header, null when absent) is refused, or
// nullopt: safe methods, requests without Origin, same-origin ones (Origin's authority equals Host)
// and allowed_origins pass.
std::optional<std::string> refused_origin(const OriginPolicy& p, std::string_view method, const std::string* origin,
                                          const std::string* host);

}  // namespace spool
