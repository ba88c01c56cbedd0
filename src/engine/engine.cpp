#include "engine/engine.hpp"

namespace spool {

std::string_view to_string(StopReason r) {
  switch (r) {
    case StopReason::end_turn:
      return "end_turn";
    case StopReason::max_tokens:
      return "max_tokens";
    case StopReason::stop_sequence:
      return "stop_sequence";
    case StopReason::tool_use:
      return "tool_use";
  }
  return "end_turn";
}

}  // namespace spool
