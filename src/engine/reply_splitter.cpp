#include "engine/reply_splitter.hpp"

#include <algorithm>

namespace spool {
namespace {

constexpr std::string_view kOpen = "<think>";
constexpr std::string_view kClose = "</think>";

std::size_t sequence_length(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) return 2;
  if ((c & 0xF0) == 0xE0) return 3;
  if ((c & 0xF8) == 0xF0) return 4;
  return 1;  // invalid lead byte: let it through
}

// Longest suffix of `s` that is a proper prefix of `tag`.
std::size_t partial_tag_suffix(std::string_view s, std::string_view tag) {
  for (std::size_t n = std::min(s.size(), tag.size() - 1); n > 0; --n) {
    if (s.substr(s.size() - n) == tag.substr(0, n)) return n;
  }
  return 0;
}

}  // namespace

void send_deltas(EngineSink& sink, const std::vector<ReplySplitter::Delta>& deltas) {
  for (const auto& d : deltas) {
    if (d.thinking) {
      sink.thinking(d.text);
    } else {
      sink.text(d.text);
    }
  }
}

std::size_t complete_utf8_prefix(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t len = sequence_length(static_cast<unsigned char>(s[i]));
    if (i + len > s.size()) break;
    bool ok = true;
    for (std::size_t k = 1; k < len; ++k) ok = ok && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    i += ok ? len : 1;
  }
  return i;
}

ReplySplitter::ReplySplitter(std::vector<std::string> stop_sequences) : stops_(std::move(stop_sequences)) {}

void ReplySplitter::push(std::vector<Delta>& out, bool thinking, std::string_view s) {
  if (s.empty()) return;
  if (!out.empty() && out.back().thinking == thinking) {
    out.back().text.append(s);
  } else {
    out.push_back(Delta{thinking, std::string(s)});
  }
}

void ReplySplitter::emit_text(std::string_view s, std::vector<Delta>& out) {
  if (stop_) return;
  auto step = stops_.feed(s);
  push(out, false, step.emit);
  if (step.stop) stop_ = std::move(step.stop);
}

void ReplySplitter::route(std::string_view s, std::vector<Delta>& out) {
  held_ += s;
  for (;;) {
    switch (mode_) {
      case Mode::undecided: {
        const std::size_t start = held_.find_first_not_of(" \t\r\n");
        if (start == std::string::npos) return;  // only whitespace so far
        const std::string_view rest = std::string_view(held_).substr(start);
        if (rest.starts_with(kOpen)) {
          mode_ = Mode::thinking;
          held_.erase(0, start + kOpen.size());
          continue;
        }
        if (kOpen.starts_with(rest)) return;  // could still become the tag
        mode_ = Mode::text;
        continue;
      }
      case Mode::thinking: {
        const std::size_t close = held_.find(kClose);
        if (close != std::string::npos) {
          push(out, true, std::string_view(held_).substr(0, close));
          held_.erase(0, close + kClose.size());
          const std::size_t text_start = held_.find_first_not_of(" \t\r\n");
          held_.erase(0, text_start == std::string::npos ? held_.size() : text_start);
          mode_ = Mode::text;
          continue;
        }
        const std::size_t keep = partial_tag_suffix(held_, kClose);
        push(out, true, std::string_view(held_).substr(0, held_.size() - keep));
        held_.erase(0, held_.size() - keep);
        return;
      }
      case Mode::text:
        emit_text(held_, out);
        held_.clear();
        return;
    }
  }
}

std::vector<ReplySplitter::Delta> ReplySplitter::feed(std::string_view piece) {
  std::vector<Delta> out;
  if (stop_) return out;
  utf8_.append(piece);
  const std::size_t n = complete_utf8_prefix(utf8_);
  std::string ready = utf8_.substr(0, n);
  utf8_.erase(0, n);
  route(ready, out);
  return out;
}

std::vector<ReplySplitter::Delta> ReplySplitter::finish() {
  std::vector<Delta> out;
  if (stop_) return out;
  std::string rest = std::move(utf8_);
  utf8_.clear();
  if (!rest.empty()) rest = "\xEF\xBF\xBD";  // an incomplete character at the very end
  route(rest, out);
  if (mode_ == Mode::thinking) {
    push(out, true, held_);
  } else if (!held_.empty()) {
    emit_text(held_, out);
  }
  held_.clear();
  if (!stop_) push(out, false, stops_.flush());
  return out;
}

}  // namespace spool
