#include "api/origin_guard.hpp"

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <cctype>

namespace spool {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The host part of a Host value ("name", "name:port", "[v6]:port"), lowercased, without a trailing dot.
std::string host_name(std::string_view authority) {
  std::string_view h = authority;
  if (h.starts_with('[')) {
    const auto close = h.find(']');
    h = close == std::string_view::npos ? h.substr(1) : h.substr(1, close - 1);
  } else if (const auto colon = h.find(':'); colon != std::string_view::npos) {
    h = h.substr(0, colon);
  }
  if (h.ends_with('.')) h.remove_suffix(1);
  return lower(h);
}

bool is_ip_literal(const std::string& name) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(name, ec);
  return !ec;
}

bool names_match(const std::string& name, std::string_view pattern) {
  const std::string p = lower(pattern);
  if (p.starts_with('.')) return name.ends_with(p) || name == p.substr(1);
  return name == p;
}

}  // namespace

std::optional<std::string> refused_host(const OriginPolicy& p, const std::string* host) {
  if (host == nullptr) return std::nullopt;
  const std::string name = host_name(*host);
  if (is_ip_literal(name) || name == "localhost" || name.ends_with(".localhost")) return std::nullopt;
  if (names_match(name, p.listen_host)) return std::nullopt;
  for (const auto& allowed : p.allowed_hosts) {
    if (allowed == "*" || names_match(name, allowed)) return std::nullopt;
  }
  return "Host '" + name +
         "' is not a name this server answers to without auth (DNS rebinding); add it to allowed_hosts or set an "
         "auth secret";
}

std::optional<std::string> refused_origin(const OriginPolicy& p, std::string_view method, const std::string* origin,
                                          const std::string* host) {
  if (origin == nullptr || method == "GET" || method == "HEAD" || method == "OPTIONS") return std::nullopt;
  const std::string o = lower(*origin);
  for (const auto& allowed : p.allowed_origins) {
    if (allowed == "*" || lower(allowed) == o) return std::nullopt;
  }
  const auto scheme_end = o.find("://");
  if (host != nullptr && scheme_end != std::string::npos && o.substr(scheme_end + 3) == lower(*host)) {
    return std::nullopt;
  }
  return "A page on " + std::string(*origin) + " may not send " + std::string(method) +
         " requests to this server without auth (cross-origin)";
}

}  // namespace spool
