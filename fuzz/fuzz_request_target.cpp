// The HTTP request target (path and query) as every route reads it: parsing with and without
// the path prefix, the id segment check, and the query values the routes take (last_event_id,
// cursor, limit), on arbitrary bytes.
#include "api/request_target.hpp"
#include "core/ids.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string target(reinterpret_cast<const char*>(data), size);
  static const std::vector<std::string> prefix{"api", "spool"};
  for (const auto* p : {&prefix, static_cast<const std::vector<std::string>*>(nullptr)}) {
    auto t = spool::parse_target(target, p != nullptr ? *p : std::vector<std::string>{});
    if (!t.ok()) continue;
    for (const auto& seg : t->segments) (void)spool::is_addressable_id(seg);
    for (auto param : t->url.params()) {
      const std::string value = param.value;
      if (param.key == "last_event_id") (void)spool::parse_event_id(value);
      if (param.key == "cursor") {
        if (auto c = spool::decode_list_cursor(value)) {
          // a cursor that decodes encodes back to itself
          if (spool::encode_list_cursor(c->first, c->second) != value) std::abort();
        }
      }
    }
  }
  return 0;
}
