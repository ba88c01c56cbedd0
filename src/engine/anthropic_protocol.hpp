// The Anthropic Messages wire format for the `anthropic` engine: the streaming request body,
// and the upstream's events re-emitted through a sink (ids, indexes and the log are Spool's).
#pragma once

#include "engine/engine.hpp"

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace spool {

// The /v1/messages body for `req` (stream: true), naming `upstream_model`.
boost::json::object anthropic_request_body(const ChatRequest& req, std::string_view upstream_model);

// Feeds one streamed Anthropic reply into a sink.
class AnthropicStream {
 public:
  explicit AnthropicStream(EngineSink& sink) : sink_(sink) {}
  // One SSE event (`type` may be empty: the data's "type" is used). False once the reply is over.
  bool on_event(std::string_view type, std::string_view data);
  // The upstream closed the stream.
  void on_end();
  bool done() const { return done_; }

 private:
  void fail(std::string explanation);
  void finish();

  EngineSink& sink_;
  bool started_ = false;
  bool done_ = false;
  std::optional<StopReason> stop_reason_;
  std::optional<std::string> stop_sequence_;
};

}  // namespace spool
