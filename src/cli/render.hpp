// What the command-line client prints: a job's events as text, status records, stream lists and
// the progress line's text. Pure: no I/O.
#pragma once

#include <boost/json/value.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace spool::cli {

// How a job's event stream ended, as far as its events tell.
enum class StreamEnd { open, completed, cancelled, error };

// What one event asks to print.
struct Printed {
  std::string out;       // for stdout: text deltas and tool_use lines
  std::string thinking;  // for stderr: thinking deltas (and a newline closing a thinking block)
};

// Folds a job's events (SPEC §3), in order, into printed text, a token count and how it ended.
class EventFolder {
 public:
  // Takes one event (its `event:` type and `data:` JSON); unknown or malformed events print nothing.
  Printed feed(std::string_view type, std::string_view data);
  // Output tokens so far: text and thinking deltas counted, replaced by message_delta's usage once seen.
  std::uint64_t output_tokens() const {
    return usage_tokens_ >= 0 ? static_cast<std::uint64_t>(usage_tokens_) : deltas_;
  }
  // How the stream ended; `open` until a terminal event arrived.
  StreamEnd end() const { return end_; }
  // The explanation of an `error` event (empty otherwise).
  const std::string& error_message() const { return error_; }
  // "\n" when stdout got text that does not end with a newline, else "".
  std::string final_newline() const;

 private:
  struct Block {
    std::string type;
    std::string name;
    std::string input;  // tool_use: the concatenated partial_json
    std::string start_input;
    bool thinking_ends_with_newline = true;
  };
  std::map<std::int64_t, Block> blocks_;
  std::uint64_t deltas_ = 0;
  std::int64_t usage_tokens_ = -1;
  StreamEnd end_ = StreamEnd::open;
  bool cancelled_reason_ = false;
  std::string error_;
  char last_out_ = '\n';
  bool any_out_ = false;
};

// Human-readable `key: value` lines of a status record (SPEC §1.3).
std::string format_status(const boost::json::value& status);

// A table of status records: ID, STATUS, MODEL, CREATED, OUT TOKENS; a header line and one line each.
std::string format_list(const std::vector<boost::json::value>& streams);

// An RFC 3339 timestamp as "YYYY-MM-DD HH:MM:SS" (UTC); other strings unchanged.
std::string short_time(std::string_view rfc3339);

// The progress line's text: "N tokens · X tok/s · T s".
std::string format_progress(std::uint64_t tokens, double seconds);

}  // namespace spool::cli
