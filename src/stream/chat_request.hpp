// A validated chat request (§2), as engines receive it.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace spool {

// One content block of a message. `raw` keeps the block as sent for engines that need more.
struct ContentBlock {
  std::string type;  // text, image, document, thinking, redacted_thinking, tool_use, tool_result
  std::string text;  // text of a text/thinking block, string content of a tool_result
  std::string id;    // tool_use id, or tool_use_id of a tool_result
  std::string name;  // tool_use name
  boost::json::object raw;
};

// One message; string content becomes a single text block.
struct ChatMessage {
  std::string role;  // user or assistant (system messages are moved into ChatRequest::system)
  std::vector<ContentBlock> content;
};

// A tool the model may call.
struct ToolSpec {
  std::string name;
  std::string description;
  boost::json::value input_schema;
};

// How the model must use tools.
struct ToolChoice {
  std::string type;  // auto, any, tool, none
  std::string name;  // for type tool
};

// The JSON the reply's text must be (output_config.format, or the older output_format and
// OpenAI-style response_format): an instance of `schema`, checked by the parser to be bounded.
struct OutputFormat {
  enum class Kind { json_schema, json_object };
  Kind kind = Kind::json_schema;
  boost::json::object schema;  // for json_object, {"type":"object"}
  std::string name;            // response_format.json_schema.name, or empty
  std::optional<bool> strict;  // response_format.json_schema.strict, as sent
};

// Everything an engine needs to produce one reply.
struct ChatRequest {
  std::string model = "default";  // as requested; resolved by the engine registry
  std::vector<ChatMessage> messages;
  std::string system;
  std::int64_t max_tokens = 0;  // <= 0: engine default
  bool stream = false;
  std::optional<double> temperature, top_p, min_p, repetition_penalty, presence_penalty, frequency_penalty;
  std::optional<std::int64_t> top_k, seed;
  std::vector<std::string> stop_sequences;
  std::vector<ToolSpec> tools;
  std::optional<ToolChoice> tool_choice;
  bool thinking = false;
  std::optional<OutputFormat> output_format;  // the shape the reply's text must take
  boost::json::object output_config;          // output_config as sent (format, effort, ...), for the anthropic engine
  boost::json::object metadata;
  int message_count = 0;    // messages after moving system messages out
  std::string traceparent;  // W3C trace context of the request that started it (validated), or empty
  std::string tracestate;   // sent along with traceparent
};

// The text blocks of `m` joined with '\n'.
std::string message_text(const ChatMessage& m);

// Which sampling parameters an upstream API takes.
enum class SamplingSet {
  anthropic,  // temperature, top_p, top_k
  openai,     // those, plus min_p, repetition/presence/frequency penalties and seed
};

// Copies the sampling parameters `req` sets (and `set` takes) into an upstream request body.
void put_sampling(const ChatRequest& req, SamplingSet set, boost::json::object& body);

}  // namespace spool
