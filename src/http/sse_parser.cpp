#include "http/sse_parser.hpp"

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
  for (char c : bytes) {
    if (after_cr_) {
      after_cr_ = false;
      if (c == '\n') continue;  // \r\n
    }
    if (c == '\n' || c == '\r') {
      after_cr_ = c == '\r';
      std::string l = std::move(line_);
      line_.clear();
      if (!line(l)) return false;
    } else {
      line_.push_back(c);
    }
  }
  return true;
}

}  // namespace spool
