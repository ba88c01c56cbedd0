// The Anthropic Messages wire format for the `anthropic` engine: the streaming request body,
// and the upstream's events re-emitted through a sink (ids, indexes and the log are Spool's).
#pragma once

#include "engine/upstream_reply.hpp"

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace spool {

// The /v1/messages body for `req` (stream: true), naming `upstream_model`.
boost::json::object anthropic_request_body(const ChatRequest& req, std::string_view upstream_model);

// The output_config to send: the request's as sent (format, effort, ...), with
// {format: {type: json_schema, schema}} added when the format came in another field; empty for none.
boost::json::object anthropic_output_config(const ChatRequest& req);

// Feeds one streamed Anthropic reply into a sink.
class AnthropicStream final : public UpstreamReply {
 public:
  explicit AnthropicStream(EngineSink& sink) : UpstreamReply(sink) {}
  // One SSE event (without an `event:` name the data's "type" is used).
  bool on_event(const SseEvent& e) override;
  void on_end() override;

 private:
  // One event of each kind; false once the reply is over (finished or failed).
  bool on_message_start(const boost::json::object& o);
  bool on_block_start(const boost::json::object& o);
  bool on_block_delta(const boost::json::object& o);
  bool on_message_delta(const boost::json::object& o);
  void finish();

  bool started_ = false;
  std::optional<StopReason> stop_reason_;
  std::optional<std::string> stop_sequence_;
};

}  // namespace spool
