#include "core/redact.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace spool {
namespace {

// True when a query parameter named `name` carries a credential.
bool credential_name(std::string_view name) {
  std::string n;
  for (const char c : name) {
    if (c == '-' || c == '_' || c == '.') continue;
    n.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  static constexpr std::array<std::string_view, 9> kWords = {"key",  "token",      "secret", "password", "passwd",
                                                             "auth", "credential", "sig",    "session"};
  return n == "pwd" || n == "code" ||
         std::any_of(kWords.begin(), kWords.end(), [&](std::string_view w) { return n.find(w) != std::string::npos; });
}

}  // namespace

std::string redact_url(std::string_view url) {
  std::string out(url);
  // userinfo: between "//" and the first '@' of the authority (which ends at / ? #).
  if (const std::size_t scheme = out.find("://"); scheme != std::string::npos) {
    const std::size_t from = scheme + 3;
    const std::size_t end = out.find_first_of("/?#", from);
    const std::size_t at = out.rfind('@', end == std::string::npos ? std::string::npos : end - 1);
    if (at != std::string::npos && at >= from) out.replace(from, at - from, "***");
  }
  // query values: name=value pairs after '?', up to '#'.
  const std::size_t q = out.find('?');
  if (q == std::string::npos) return out;
  std::size_t i = q + 1;
  while (i < out.size() && out[i] != '#') {
    std::size_t end = out.find_first_of("&#", i);
    if (end == std::string::npos) end = out.size();
    const std::size_t eq = out.find('=', i);
    if (eq != std::string::npos && eq < end && credential_name(std::string_view(out).substr(i, eq - i))) {
      out.replace(eq + 1, end - eq - 1, "***");
      end = eq + 4;
    }
    i = end < out.size() && out[end] == '&' ? end + 1 : end;
  }
  return out;
}

}  // namespace spool
