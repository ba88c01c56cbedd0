// Turns a model's raw output pieces into thinking and text deltas: whole UTF-8 characters only,
// reasoning between <think> tags, and stop sequences. Shared by engines that decode text themselves.
#pragma once

#include "engine/engine.hpp"
#include "engine/stop_matcher.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spool {

// Splits raw output into deltas as it is produced.
class ReplySplitter {
 public:
  explicit ReplySplitter(std::vector<std::string> stop_sequences);

  // One delta to send.
  struct Delta {
    bool thinking = false;
    std::string text;
  };

  // Adds a piece of raw output (any bytes, possibly cutting a UTF-8 character) and returns
  // the deltas that are now certain.
  std::vector<Delta> feed(std::string_view piece);

  // The end of the output: returns whatever was held back (an incomplete character becomes U+FFFD).
  std::vector<Delta> finish();

  // The stop sequence that ended the text, once one did; later input is ignored.
  const std::optional<std::string>& stopped() const { return stop_; }

 private:
  enum class Mode { undecided, thinking, text };
  void route(std::string_view s, std::vector<Delta>& out);
  void emit_text(std::string_view s, std::vector<Delta>& out);
  static void push(std::vector<Delta>& out, bool thinking, std::string_view s);

  StopMatcher stops_;
  Mode mode_ = Mode::undecided;
  std::string utf8_;  // bytes of an incomplete character
  std::string held_;  // text not yet routed (a possible tag)
  std::optional<std::string> stop_;
};

// Sends `deltas` to `sink` in order (thinking or text).
void send_deltas(EngineSink& sink, const std::vector<ReplySplitter::Delta>& deltas);

// Length of the longest prefix of `s` made of complete UTF-8 sequences (an invalid byte counts
// as complete, so it is not held forever).
std::size_t complete_utf8_prefix(std::string_view s);

}  // namespace spool
