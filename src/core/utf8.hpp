// UTF-8 checks for text that reaches JSON output.
#pragma once

#include <string>
#include <string_view>

namespace spool {

// True when `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool is_valid_utf8(std::string_view s);

// `s` with each ill-formed sequence replaced by U+FFFD (a copy of `s` when it is well-formed).
std::string to_valid_utf8(std::string_view s);

// to_valid_utf8(s) cut to at most `max` bytes at a character boundary, with "..." appended when cut:
// foreign text (an upstream's error, a chunk) bounded before it goes into a message.
std::string bounded_text(std::string_view s, std::size_t max);

}  // namespace spool
