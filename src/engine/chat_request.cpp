#include "engine/chat_request.hpp"

namespace spool {

std::string message_text(const ChatMessage& m) {
  std::string out;
  bool first = true;
  for (const auto& b : m.content) {
    if (b.type != "text") continue;
    if (!first) out.push_back('\n');
    out += b.text;
    first = false;
  }
  return out;
}

}  // namespace spool
