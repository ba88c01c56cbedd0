// UTF-8 checks for text that reaches JSON output.
#pragma once

#include <string>
#include <string_view>

namespace spool {

// True when `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool is_valid_utf8(std::string_view s);

// `s` with each ill-formed sequence replaced by U+FFFD (a copy of `s` when it is well-formed).
std::string to_valid_utf8(std::string_view s);

}  // namespace spool
