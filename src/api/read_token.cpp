#include "api/read_token.hpp"

#include "api/request_context.hpp"
#include "core/sha256.hpp"

#include <algorithm>
#include <charconv>

namespace spool {
namespace {

constexpr std::size_t kMacHexDigits = 32;  // 128 bits of the HMAC
constexpr std::size_t kMaxTokenBytes = 64;

// Parses the whole of `s` as a decimal number without sign or leading zeros.
template <class T>
std::optional<T> number(std::string_view s) {
  T v{};
  if (s.empty() || (s.size() > 1 && s.front() == '0')) return std::nullopt;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::int64_t unix_seconds(SysTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

ReadTokens::ReadTokens(std::string key, std::chrono::seconds ttl) : key_(std::move(key)), ttl_(ttl) {}

std::string ReadTokens::key_from_secrets(std::vector<std::string> secrets) {
  std::sort(secrets.begin(), secrets.end());
  std::string material = "spool read tokens v1";
  for (const auto& s : secrets) {
    material.push_back('\0');
    material += s;
  }
  const auto digest = sha256(material);
  return {reinterpret_cast<const char*>(digest.data()), digest.size()};
}

std::string ReadTokens::mac(std::string_view id, std::uint32_t incarnation, std::int64_t expiry) const {
  std::string message(id);
  message.push_back('\0');
  message += std::to_string(incarnation);
  message.push_back('\0');
  message += std::to_string(expiry);
  const auto digest = hmac_sha256(key_, message);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < kMacHexDigits / 2; ++i) {
    out.push_back(kDigits[digest[i] >> 4]);
    out.push_back(kDigits[digest[i] & 0xf]);
  }
  return out;
}

std::string ReadTokens::issue(std::string_view id, std::uint32_t incarnation, SysTime now) const {
  const std::int64_t expiry = unix_seconds(now) + ttl_.count();
  return std::to_string(expiry) + "." + std::to_string(incarnation) + "." + mac(id, incarnation, expiry);
}

std::optional<std::uint32_t> ReadTokens::check(std::string_view token, std::string_view id, SysTime now) const {
  if (token.size() > kMaxTokenBytes) return std::nullopt;
  const auto dot1 = token.find('.');
  const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos) return std::nullopt;
  const auto expiry = number<std::int64_t>(token.substr(0, dot1));
  const auto incarnation = number<std::uint32_t>(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!expiry || !incarnation || *incarnation == 0) return std::nullopt;
  const bool authentic = constant_time_equal(token.substr(dot2 + 1), mac(id, *incarnation, *expiry));
  if (!authentic || *expiry <= unix_seconds(now)) return std::nullopt;
  return incarnation;
}

}  // namespace spool
