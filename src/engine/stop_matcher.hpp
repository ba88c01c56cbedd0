// Stop-sequence detection over streamed text, shared by every engine.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spool {

// Feeds text as it is produced and releases only text that cannot be the start of a stop
// sequence; holds back a possible prefix until the next delta decides it.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  // What `feed` found.
  struct Step {
    std::string emit;                 // text safe to send now
    std::optional<std::string> stop;  // the stop sequence hit, if any (text after it is dropped)
  };

  // Adds `delta` and returns what can be sent.
  Step feed(std::string_view delta);

  // Text still held back at the end of the reply.
  std::string flush();

 private:
  std::vector<std::string> stops_;
  std::string held_;
};

}  // namespace spool
