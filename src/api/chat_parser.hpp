// Parsing and validating the chat request body of §2.
#pragma once

#include "core/result.hpp"
#include "stream/chat_request.hpp"

#include <string_view>

namespace spool {

// Parses `body` (JSON text) into a ChatRequest and checks every rule of §2. Schema failures
// give an Error whose detail lists {"type","loc","msg"}; rule failures give an explanation.
Result<ChatRequest> parse_chat_request(std::string_view body);

}  // namespace spool
