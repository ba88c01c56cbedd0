#include "stream/stream_info.hpp"

namespace spool {

std::string_view to_string(StreamStatus s) {
  switch (s) {
    case StreamStatus::pending:
      return "pending";
    case StreamStatus::processing:
      return "processing";
    case StreamStatus::completed:
      return "completed";
    case StreamStatus::cancelled:
      return "cancelled";
    case StreamStatus::error:
      return "error";
  }
  return "error";
}

}  // namespace spool
