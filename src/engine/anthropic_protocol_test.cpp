#include "engine/anthropic_protocol.hpp"

#include <gtest/gtest.h>

namespace spool {
namespace {

// An upstream SSE event with no id.
SseEvent sse_event(std::string event, std::string data) { return SseEvent{std::move(event), std::move(data), {}}; }

class TraceSink final : public EngineSink {
 public:
  void queued(std::optional<int>) override {}
  void begin(std::int64_t n) override { trace += "B(" + std::to_string(n) + ")"; }
  void thinking(std::string_view d) override { trace += "T(" + std::string(d) + ")"; }
  void thinking_signature(std::string_view s) override { trace += "S(" + std::string(s) + ")"; }
  void text(std::string_view d) override { trace += "X(" + std::string(d) + ")"; }
  void tool_use(std::string_view n) override { trace += "U(" + std::string(n) + ")"; }
  void tool_input(std::string_view j) override { trace += "J(" + std::string(j) + ")"; }
  void output_tokens(std::int64_t n) override { trace += "O(" + std::to_string(n) + ")"; }
  void finish(StopReason r, std::optional<std::string> s) override {
    trace += "F(" + std::string(to_string(r)) + (s ? "," + *s : "") + ")";
  }
  void fail(Error e) override { trace += "E(" + e.explanation + ")"; }
  bool stopped() const override { return false; }
  std::string trace;
};

TEST(AnthropicStream, ReemitsTheUpstreamEvents) {
  TraceSink sink;
  AnthropicStream s(sink);
  EXPECT_TRUE(
      s.on_event(sse_event("message_start", R"({"type":"message_start","message":{"usage":{"input_tokens":9}}})")));
  EXPECT_TRUE(s.on_event(sse_event("ping", R"({"type":"ping"})")));
  s.on_event(sse_event("content_block_start",
                       R"({"type":"content_block_start","index":0,"content_block":{"type":"thinking"}})"));
  s.on_event(
      sse_event("content_block_delta",
                R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hm"}})"));
  s.on_event(
      sse_event("content_block_delta",
                R"({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}})"));
  s.on_event(sse_event("content_block_delta",
                       R"({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"hi"}})"));
  s.on_event(sse_event("content_block_start",
                       R"({"type":"content_block_start","index":2,"content_block":{"type":"tool_use","name":"f"}})"));
  s.on_event(
      sse_event("content_block_delta",
                R"({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{}"}})"));
  s.on_event(sse_event(
      "message_delta",
      R"({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":4}})"));
  EXPECT_FALSE(s.on_event(sse_event("", R"({"type":"message_stop"})")));
  EXPECT_EQ(sink.trace, "B(9)T(hm)S(EqQB)X(hi)U(f)J({})O(4)F(tool_use)");
}

TEST(AnthropicStream, CachedPromptTokensCountAsInput) {
  TraceSink sink;
  AnthropicStream s(sink);
  s.on_event(sse_event("message_start", R"({"type":"message_start","message":{"usage":{"input_tokens":1,)"
                                        R"("cache_read_input_tokens":10,"cache_creation_input_tokens":2}}})"));
  EXPECT_EQ(sink.trace, "B(13)");
}

TEST(AnthropicStream, AMatchedStopSequenceIsStopReasonStopSequence) {
  TraceSink sink;
  AnthropicStream s(sink);
  s.on_event(sse_event("message_start", R"({"type":"message_start","message":{"usage":{"input_tokens":3}}})"));
  s.on_event(sse_event("message_delta", R"({"type":"message_delta","delta":{"stop_reason":"end_turn",)"
                                        R"("stop_sequence":"END"},"usage":{"output_tokens":2}})"));
  s.on_event(sse_event("message_stop", R"({"type":"message_stop"})"));
  EXPECT_EQ(sink.trace, "B(3)O(2)F(stop_sequence,END)");
}

TEST(AnthropicStream, ErrorsAndCuts) {
  TraceSink a;
  AnthropicStream s1(a);
  EXPECT_FALSE(s1.on_event(
      sse_event("error", R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})")));
  EXPECT_EQ(a.trace, "E(upstream error: Overloaded)");
  TraceSink b;
  AnthropicStream s2(b);
  s2.on_event(sse_event("message_start", R"({"message":{}})"));
  s2.on_end();
  EXPECT_EQ(b.trace, "B(0)E(upstream closed the stream before the reply finished)");
  TraceSink c;
  AnthropicStream s3(c);
  EXPECT_FALSE(s3.on_event(sse_event("message_start", "{oops")));
  EXPECT_NE(c.trace.find("E(malformed event"), std::string::npos);
}

TEST(AnthropicRequest, BodyKeepsBlocksAndSettings) {
  ChatRequest r;
  r.system = "sys";
  r.thinking = true;
  r.max_tokens = 2048;
  r.stop_sequences = {"END"};
  r.messages.push_back(ChatMessage{"user", {ContentBlock{"text", "hi", "", "", {}}}});
  auto body = anthropic_request_body(r, "claude-x");
  EXPECT_EQ(body.at("model").as_string(), "claude-x");
  EXPECT_EQ(body.at("max_tokens").as_int64(), 2048);
  EXPECT_EQ(body.at("thinking").at("budget_tokens").as_int64(), 1024);
  EXPECT_EQ(body.at("stop_sequences").at(0).as_string(), "END");
  EXPECT_EQ(body.at("messages").at(0).at("content").at(0).at("text").as_string(), "hi");
  r.max_tokens = 100;
  EXPECT_FALSE(anthropic_request_body(r, "m").contains("thinking"));  // budget must stay below max_tokens
}

TEST(AnthropicRequest, ForwardsOutputConfigAsSent) {
  ChatRequest r;
  r.messages.push_back(ChatMessage{"user", {ContentBlock{"text", "hi", "", "", {}}}});
  EXPECT_FALSE(anthropic_request_body(r, "m").contains("output_config"));
  const boost::json::object schema{{"type", "object"}, {"properties", {{"a", {{"type", "string"}}}}}};
  r.output_config = boost::json::object{{"effort", "low"}, {"format", {{"type", "json_schema"}, {"schema", schema}}}};
  r.output_format = OutputFormat{OutputFormat::Kind::json_schema, schema, {}, std::nullopt};
  EXPECT_EQ(anthropic_request_body(r, "m").at("output_config"), r.output_config);

  r.output_config = boost::json::object{{"effort", "high"}};  // the format came as output_format or response_format
  const boost::json::object oc = anthropic_request_body(r, "m").at("output_config").as_object();
  EXPECT_EQ(oc.at("effort").as_string(), "high");
  EXPECT_EQ(oc.at("format").at("type").as_string(), "json_schema");
  EXPECT_EQ(oc.at("format").at("schema"), schema);
}

}  // namespace
}  // namespace spool

namespace spool {
namespace {

TEST(AnthropicStream, UsageOutOfRangeIsAClearUpstreamError) {
  TraceSink a;
  AnthropicStream s1(a);
  EXPECT_FALSE(s1.on_event(sse_event("message_start", R"({"message":{"usage":{"input_tokens":1e30}}})")));
  EXPECT_NE(a.trace.find("invalid usage value: message.usage.input_tokens = 1E30"), std::string::npos) << a.trace;
  TraceSink b;
  AnthropicStream s2(b);
  s2.on_event(sse_event("message_start", R"({"message":{"usage":{"input_tokens":3}}})"));
  EXPECT_FALSE(
      s2.on_event(sse_event("message_delta", R"({"delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":1.5}})")));
  EXPECT_NE(b.trace.find("invalid usage value: usage.output_tokens = 1.5E0"), std::string::npos) << b.trace;
}

TEST(AnthropicStream, ADeltaPastTheLimitFailsTheReply) {
  TraceSink a;
  AnthropicStream s(a);
  s.set_limits(UpstreamLimits{1024, 3});
  s.on_event(sse_event("message_start", R"({"message":{}})"));
  EXPECT_TRUE(s.on_event(sse_event("content_block_delta", R"({"delta":{"type":"text_delta","text":"abc"}})")));
  EXPECT_FALSE(
      s.on_event(sse_event("content_block_delta", R"({"delta":{"type":"thinking_delta","thinking":"abcd"}})")));
  EXPECT_EQ(a.trace, "B(0)X(abc)E(upstream sent a thinking delta of 4 bytes, more than upstream_max_delta_bytes (3))");
}

}  // namespace
}  // namespace spool
