// The OpenAI chat-completions wire format: building a streaming request from a ChatRequest,
// and turning the streamed chunks into EngineSink calls. No I/O here.
#pragma once

#include "engine/engine.hpp"
#include "engine/reply_splitter.hpp"
#include "engine/upstream_reply.hpp"

#include <boost/json/object.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace spool {

// The /v1/chat/completions body for `req` (stream with usage), naming `upstream_model`.
// Stop sequences are not sent: Spool applies them itself so it can report which one matched.
boost::json::object openai_request_body(const ChatRequest& req, std::string_view upstream_model);

// The response_format that asks an OpenAI-compatible server for `format`: {type: json_object}, or
// {type: json_schema, json_schema: {name ("response" when unnamed), schema, strict when given}}.
boost::json::object openai_response_format(const OutputFormat& format);

// Feeds one streamed reply into a sink.
class OpenAiStream final : public UpstreamReply {
 public:
  OpenAiStream(EngineSink& sink, std::vector<std::string> stop_sequences);

  bool on_event(const SseEvent& e) override { return on_data(e.data); }

  // One SSE `data:` payload. Returns true to keep reading, false when the reply is over
  // (finished, [DONE], a stop sequence, or an error already reported to the sink).
  bool on_data(std::string_view data);

  // The upstream closed the stream: finishes if it had finished, else reports the cut.
  void on_end() override;

 private:
  // Parts of a chunk; each returns false once the reply is over (finished or failed).
  bool on_usage(const boost::json::object& usage);
  bool on_delta(const boost::json::object& delta);
  bool on_tool_call(const boost::json::object& call);
  void start();
  void finish();

  ReplySplitter splitter_;
  bool started_ = false;
  std::optional<StopReason> finish_reason_;
  std::int64_t prompt_tokens_ = 0, completion_tokens_ = 0, chunks_ = 0;
  std::int64_t tool_index_ = -1;  // index of the open tool call, -1 = none
};

// The message of an upstream error body ({"error":{"message":...}} or {"message":...}), or the body itself.
std::string upstream_error_message(std::string_view body);

}  // namespace spool
