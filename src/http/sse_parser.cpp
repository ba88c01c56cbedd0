#include "http/sse_parser.hpp"

#include <string>

namespace spool {

bool SseParser::line(std::string_view l) {
  if (l.empty()) {
    if (!has_data_ && event_.empty()) {
      id_.clear();
      return true;
    }
    SseEvent e{std::move(event_), std::move(data_), std::move(id_)};
    event_.clear();
    data_.clear();
    id_.clear();
    has_data_ = false;
    return on_event_(std::move(e));
  }
  if (l.front() == ':') return true;  // comment
  const std::size_t colon = l.find(':');
  const std::string_view field = l.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? std::string_view{} : l.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field == "data") {
    if (data_.size() + value.size() + (has_data_ ? 1 : 0) > max_) {
      overflow_ = "an SSE event of more than " + std::to_string(max_) + " bytes";
      return false;
    }
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    has_data_ = true;
  } else if (field == "event") {
    event_.assign(value);
  } else if (field == "id" && value.find('\0') == std::string_view::npos) {
    id_.assign(value);
  }
  return true;
}

bool SseParser::feed(std::string_view bytes) {
  if (!overflow_.empty()) return false;
  while (!bytes.empty()) {
    if (after_cr_) {
      after_cr_ = false;
      if (bytes.front() == '\n') {  // \r\n
        bytes.remove_prefix(1);
        continue;
      }
    }
    const std::size_t eol = bytes.find_first_of("\r\n");
    const std::string_view part = bytes.substr(0, eol);
    if (part.size() > max_ - line_.size()) {
      overflow_ = "an SSE line of more than " + std::to_string(max_) + " bytes";
      return false;
    }
    if (eol == std::string_view::npos) {
      line_.append(part);
      return true;
    }
    after_cr_ = bytes[eol] == '\r';
    bytes.remove_prefix(eol + 1);
    bool go_on = false;
    if (line_.empty()) {
      go_on = line(part);
    } else {
      line_.append(part);
      const std::string l = std::move(line_);
      line_.clear();
      go_on = line(l);
    }
    if (!go_on) return false;
  }
  return true;
}

}  // namespace spool
