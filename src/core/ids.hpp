// Random identifiers.
#pragma once

#include <string>

namespace spool {

// A lowercase random UUID version 4.
std::string uuid4();

// `prefix` followed by 32 random lowercase hex digits (msg_, block_, sig_, tool_).
std::string prefixed_hex_id(std::string_view prefix);

// True when `id` can be used as one path segment: 1..256 bytes of UTF-8, no '/', whitespace or control characters.
bool is_addressable_id(std::string_view id);

}  // namespace spool
