#include "core/ids.hpp"

#include "core/utf8.hpp"

#include <array>
#include <cstdint>
#include <random>

namespace spool {
namespace {

std::uint64_t random_u64() {
  thread_local std::mt19937_64 gen{[] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }()};
  return gen();
}

void append_hex(std::string& out, std::uint64_t v, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) out.push_back(kHex[(v >> (i * 4)) & 0xF]);
}

}  // namespace

std::string uuid4() {
  std::uint64_t hi = random_u64();
  std::uint64_t lo = random_u64();
  hi = (hi & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // variant 10
  std::string s;
  s.reserve(36);
  append_hex(s, hi >> 32, 8);
  s.push_back('-');
  append_hex(s, (hi >> 16) & 0xFFFF, 4);
  s.push_back('-');
  append_hex(s, hi & 0xFFFF, 4);
  s.push_back('-');
  append_hex(s, lo >> 48, 4);
  s.push_back('-');
  append_hex(s, lo & 0xFFFFFFFFFFFFULL, 12);
  return s;
}

std::string prefixed_hex_id(std::string_view prefix) {
  std::string s(prefix);
  s.reserve(prefix.size() + 32);
  append_hex(s, random_u64(), 16);
  append_hex(s, random_u64(), 16);
  return s;
}

bool is_addressable_id(std::string_view id) {
  if (id.empty() || id.size() > 256) return false;
  for (unsigned char c : id) {
    if (c == '/' || c <= 0x20 || c == 0x7F) return false;
  }
  return is_valid_utf8(id);
}

}  // namespace spool
