// The chat request body parser and validator (§2) on arbitrary bytes: it returns a request or
// an error with an explanation, never crashes, and what it accepts is well formed.
#include "api/chat_parser.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto r = spool::parse_chat_request(body);
  if (r.ok()) {
    if (r->messages.empty() && r->message_count != 0) std::abort();
    if (r->message_count < 0) std::abort();
  } else if (r.error().explanation.empty() && r.error().detail.is_null()) {
    std::abort();  // every refusal says why
  }
  return 0;
}
