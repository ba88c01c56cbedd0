#include "engine/openai_protocol.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace spool {
namespace {
namespace json = boost::json;

// Records sink calls as a readable trace.
class TraceSink final : public EngineSink {
 public:
  void queued(std::optional<int>) override {}
  void begin(std::int64_t n) override { input = n; }
  void thinking(std::string_view d) override { trace += "T(" + std::string(d) + ")"; }
  void thinking_signature(std::string_view s) override { trace += "S(" + std::string(s) + ")"; }
  void text(std::string_view d) override { trace += "X(" + std::string(d) + ")"; }
  void tool_use(std::string_view n) override { trace += "U(" + std::string(n) + ")"; }
  void tool_input(std::string_view j) override { trace += "J(" + std::string(j) + ")"; }
  void output_tokens(std::int64_t n) override { output = n; }
  void finish(StopReason r, std::optional<std::string> s) override {
    trace += "F(" + std::string(to_string(r)) + (s ? "," + *s : "") + ")";
  }
  void fail(Error e) override { trace += "E(" + e.explanation + ")"; }
  bool stopped() const override { return false; }
  std::string trace;
  std::int64_t input = -1, output = -1;
};

std::string chunk(const std::string& delta, const char* finish = nullptr) {
  json::object choice{{"index", 0}, {"delta", json::parse(delta)}};
  choice["finish_reason"] = finish ? json::value(finish) : json::value(nullptr);
  return json::serialize(json::object{{"choices", json::array{choice}}});
}

TEST(OpenAiStream, TextReasoningUsageAndFinish) {
  TraceSink sink;
  OpenAiStream s(sink, {});
  EXPECT_TRUE(s.on_data(chunk(R"({"role":"assistant","reasoning_content":"hmm"})")));
  EXPECT_TRUE(s.on_data(chunk(R"({"content":"Hel"})")));
  EXPECT_TRUE(s.on_data(chunk(R"({"content":"lo"})", "stop")));
  EXPECT_TRUE(s.on_data(R"({"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}})"));
  EXPECT_FALSE(s.on_data("[DONE]"));
  EXPECT_EQ(sink.trace, "T(hmm)X(Hel)X(lo)F(end_turn)");
  EXPECT_EQ(sink.input, 7);
  EXPECT_EQ(sink.output, 3);
}

TEST(OpenAiStream, ToolCallsBecomeToolUseBlocks) {
  TraceSink sink;
  OpenAiStream s(sink, {});
  s.on_data(
      chunk(R"({"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"get","arguments":""}}]})"));
  s.on_data(chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}}]})"));
  s.on_data(chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]})", "tool_calls"));
  s.on_end();
  EXPECT_EQ(sink.trace, R"(U(get)J({"a":)J(1})F(tool_use))");
}

TEST(OpenAiStream, LengthAndStopSequences) {
  TraceSink a;
  OpenAiStream s1(a, {});
  s1.on_data(chunk(R"({"content":"x"})", "length"));
  s1.on_end();
  EXPECT_EQ(a.trace, "X(x)F(max_tokens)");
  TraceSink b;
  OpenAiStream s2(b, {"END"});
  EXPECT_TRUE(s2.on_data(chunk(R"({"content":"one E"})")));
  EXPECT_FALSE(s2.on_data(chunk(R"({"content":"ND two"})")));
  EXPECT_EQ(b.trace, "X(one )F(stop_sequence,END)");
}

TEST(OpenAiStream, FailuresAreExplained) {
  TraceSink a;
  OpenAiStream s1(a, {});
  EXPECT_FALSE(s1.on_data("{not json"));
  EXPECT_NE(a.trace.find("E(malformed chunk"), std::string::npos) << a.trace;
  TraceSink b;
  OpenAiStream s2(b, {});
  s2.on_data(chunk(R"({"content":"partial"})"));
  s2.on_end();
  EXPECT_NE(b.trace.find("E(upstream closed the stream before the reply finished)"), std::string::npos) << b.trace;
  TraceSink c;
  OpenAiStream s3(c, {});
  EXPECT_FALSE(s3.on_data(R"({"error":{"message":"model overloaded"}})"));
  EXPECT_NE(c.trace.find("model overloaded"), std::string::npos);
}

TEST(OpenAiRequest, TranslatesConversationToolsAndSampling) {
  ChatRequest r;
  r.system = "be brief";
  r.max_tokens = 9;
  r.temperature = 0.5;
  r.seed = 3;
  r.stop_sequences = {"x"};
  r.tools.push_back(ToolSpec{"get", "fetch", json::object{{"type", "object"}}});
  r.tool_choice = ToolChoice{"any", ""};
  ChatMessage u{"user", {ContentBlock{"text", "hi", "", "", {}}}};
  ChatMessage a{"assistant", {ContentBlock{"tool_use", "", "t1", "get", json::object{{"input", {{"q", 1}}}}}}};
  ChatMessage t{"user", {ContentBlock{"tool_result", "42", "t1", "", {}}}};
  r.messages = {u, a, t};
  const json::object body = openai_request_body(r, "up-model");
  EXPECT_EQ(body.at("model").as_string(), "up-model");
  EXPECT_TRUE(body.at("stream").as_bool());
  EXPECT_TRUE(body.at("stream_options").at("include_usage").as_bool());
  EXPECT_FALSE(body.contains("stop"));
  EXPECT_EQ(body.at("tool_choice").as_string(), "required");
  const auto& msgs = body.at("messages").as_array();
  ASSERT_EQ(msgs.size(), 4u);
  EXPECT_EQ(msgs[0].at("role").as_string(), "system");
  EXPECT_EQ(msgs[2].at("tool_calls").at(0).at("function").at("arguments").as_string(), R"({"q":1})");
  EXPECT_EQ(msgs[3].at("role").as_string(), "tool");
  EXPECT_EQ(msgs[3].at("tool_call_id").as_string(), "t1");
  EXPECT_EQ(upstream_error_message(R"({"error":{"message":"bad key"}})"), "bad key");
}

TEST(OpenAiRequest, OutputFormatBecomesResponseFormat) {
  ChatRequest r;
  r.messages.push_back(ChatMessage{"user", {ContentBlock{"text", "hi", "", "", {}}}});
  EXPECT_FALSE(openai_request_body(r, "m").contains("response_format"));
  const json::object schema{{"type", "object"}, {"required", json::array{"a"}}};
  r.output_format = OutputFormat{OutputFormat::Kind::json_schema, schema, {}, std::nullopt};
  EXPECT_EQ(json::serialize(openai_request_body(r, "m").at("response_format")),
            R"({"type":"json_schema","json_schema":{"name":"response","schema":{"type":"object","required":["a"]}}})");
  r.output_format->name = "person";
  r.output_format->strict = true;
  const json::value rf = openai_request_body(r, "m").at("response_format");
  EXPECT_EQ(rf.at("json_schema").at("name").as_string(), "person");
  EXPECT_TRUE(rf.at("json_schema").at("strict").as_bool());
  r.output_format = OutputFormat{OutputFormat::Kind::json_object, json::object{{"type", "object"}}, {}, std::nullopt};
  EXPECT_EQ(json::serialize(openai_request_body(r, "m").at("response_format")), R"({"type":"json_object"})");
}

}  // namespace
}  // namespace spool

namespace spool {
namespace {

TEST(OpenAiStream, UsageOutOfRangeIsAClearUpstreamError) {
  for (const std::string bad : {"1.5", "1e30", "18446744073709551615", "-3", "1e400"}) {
    TraceSink sink;
    OpenAiStream s(sink, {});
    EXPECT_FALSE(s.on_data(R"({"choices":[],"usage":{"prompt_tokens":)" + bad + "}}")) << bad;
    EXPECT_TRUE(s.done()) << bad;
    EXPECT_NE(sink.trace.find("upstream sent an invalid usage value: usage.prompt_tokens"), std::string::npos)
        << bad << " " << sink.trace;
  }
  TraceSink ok;
  OpenAiStream s(ok, {});
  EXPECT_TRUE(s.on_data(R"({"choices":[],"usage":{"prompt_tokens":4.0,"completion_tokens":9007199254740992}})"));
}

TEST(OpenAiStream, ToolIndexOutOfRangeIsAClearUpstreamError) {
  TraceSink sink;
  OpenAiStream s(sink, {});
  EXPECT_FALSE(s.on_data(chunk(R"({"tool_calls":[{"index":1e10,"function":{"name":"f","arguments":"{}"}}]})")));
  EXPECT_NE(sink.trace.find("E(upstream sent an invalid tool call index: 1E10"), std::string::npos) << sink.trace;
}

TEST(OpenAiStream, ADeltaPastTheLimitFailsTheReply) {
  TraceSink sink;
  OpenAiStream s(sink, {});
  s.set_limits(UpstreamLimits{1024, 8});
  EXPECT_TRUE(s.on_data(chunk(R"({"content":"12345678"})")));
  EXPECT_FALSE(s.on_data(chunk(R"({"content":"123456789"})")));
  EXPECT_EQ(sink.trace, "X(12345678)E(upstream sent a text delta of 9 bytes, more than upstream_max_delta_bytes (8))");
  TraceSink tools;
  OpenAiStream t(tools, {});
  t.set_limits(UpstreamLimits{1024, 4});
  EXPECT_FALSE(t.on_data(chunk(R"({"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{\"a\":1}"}}]})")));
  EXPECT_NE(tools.trace.find("tool input delta of 7 bytes"), std::string::npos) << tools.trace;
}

TEST(UpstreamErrorMessage, CarriesTheUpstreamsOwnExplanationBounded) {
  // Another Spool's §5 body: the title alone says nothing; the explanation does.
  EXPECT_EQ(upstream_error_message(R"({"type":"error","error":{"type":"invalid_request_error",
      "message":"Invalid Request Error","detail":{"code":"INVALID_REQUEST_ERROR",
      "explanation":[{"type":"missing","loc":["body","messages"],"msg":"Field required"}]}}})"),
            "Invalid Request Error: body.messages: Field required");
  EXPECT_EQ(upstream_error_message(R"({"error":{"message":"Invalid Request Error: tool names must be unique",
      "detail":{"explanation":"tool names must be unique"}}})"),
            "Invalid Request Error: tool names must be unique");
  EXPECT_EQ(upstream_error_message(R"({"detail":"Model not loaded"})"), "Model not loaded");
  const std::string huge = upstream_error_message(R"({"error":{"message":")" + std::string(5000, 'x') + "\"}}");
  EXPECT_LE(huge.size(), 1003u);
  EXPECT_EQ(upstream_error_message("bad \xFF bytes"), "bad \xEF\xBF\xBD bytes");
}

}  // namespace
}  // namespace spool
