// Tests for how the client folds events and formats records.
#include "cli/render.hpp"

#include <boost/json.hpp>

#include <gtest/gtest.h>

namespace spool::cli {
namespace {

namespace json = boost::json;

std::string text_delta(int index, const std::string& t) {
  return R"({"type":"content_block_delta","index":)" + std::to_string(index) +
         R"(,"block_id":"b","delta":{"type":"text_delta","text":)" + json::serialize(json::value(t)) + "}}";
}

TEST(CliEventFolder, TextDeltasGoToStdoutAndCountAsTokens) {
  EventFolder f;
  EXPECT_TRUE(
      f.feed("message_start", R"({"type":"message_start","message":{"usage":{"input_tokens":2}}})").out.empty());
  f.feed("content_block_start",
         R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})");
  EXPECT_EQ(f.feed("content_block_delta", text_delta(0, "hello ")).out, "hello ");
  EXPECT_EQ(f.feed("content_block_delta", text_delta(0, "world")).out, "world");
  EXPECT_EQ(f.output_tokens(), 2u);
  EXPECT_EQ(f.final_newline(), "\n");
  f.feed("content_block_stop", R"({"type":"content_block_stop","index":0})");
  EXPECT_EQ(f.end(), StreamEnd::open);
  f.feed("message_delta", R"({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}})");
  EXPECT_EQ(f.output_tokens(), 5u) << "usage replaces the count";
  f.feed("message_stop", R"({"type":"message_stop"})");
  EXPECT_EQ(f.end(), StreamEnd::completed);
}

TEST(CliEventFolder, FinalNewlineOnlyWhenMissing) {
  EventFolder f;
  EXPECT_EQ(f.final_newline(), "") << "nothing printed";
  f.feed("content_block_delta", text_delta(0, "line\n"));
  EXPECT_EQ(f.final_newline(), "");
}

TEST(CliEventFolder, ThinkingGoesToStderrEndingWithANewline) {
  EventFolder f;
  f.feed("content_block_start", R"({"type":"content_block_start","index":0,"content_block":{"type":"thinking"}})");
  const Printed p = f.feed(
      "content_block_delta",
      R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Thinking about: x"}})");
  EXPECT_EQ(p.thinking, "Thinking about: x");
  EXPECT_TRUE(p.out.empty());
  EXPECT_EQ(f.feed("content_block_stop", R"({"type":"content_block_stop","index":0})").thinking, "\n");
  EXPECT_EQ(f.output_tokens(), 1u);
  EXPECT_EQ(f.final_newline(), "") << "thinking is not stdout text";
}

TEST(CliEventFolder, ToolUseIsOneLineAfterItsBlockStops) {
  EventFolder f;
  f.feed("content_block_delta", text_delta(0, "calling"));
  f.feed(
      "content_block_start",
      R"({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","name":"get_weather","input":{}}})");
  EXPECT_TRUE(f.feed("content_block_delta", R"({"type":"content_block_delta","index":1,
      "delta":{"type":"input_json_delta","partial_json":"{\"city\":"}})")
                  .out.empty());
  f.feed("content_block_delta",
         R"({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"Oslo\"}"}})");
  EXPECT_EQ(f.feed("content_block_stop", R"({"type":"content_block_stop","index":1})").out,
            "\n[tool_use get_weather {\"city\":\"Oslo\"}]\n");

  EventFolder g;  // no deltas: the start block's input
  g.feed("content_block_start",
         R"({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","name":"t","input":{}}})");
  EXPECT_EQ(g.feed("content_block_stop", R"({"type":"content_block_stop","index":0})").out, "[tool_use t {}]\n");
}

TEST(CliEventFolder, CancelledAndErrorEnds) {
  EventFolder c;
  c.feed("message_delta",
         R"({"type":"message_delta","delta":{"stop_reason":"cancelled"},"usage":{"output_tokens":1}})");
  c.feed("message_stop", R"({"type":"message_stop"})");
  EXPECT_EQ(c.end(), StreamEnd::cancelled);

  EventFolder e;
  e.feed("error", R"({"type":"error","error":{"type":"api_error","message":"API Error",
      "detail":{"code":"API_ERROR","explanation":"upstream 127.0.0.1:9: connection refused"}},"request_id":"x"})");
  EXPECT_EQ(e.end(), StreamEnd::error);
  EXPECT_EQ(e.error_message(), "upstream 127.0.0.1:9: connection refused");

  EventFolder junk;
  EXPECT_TRUE(junk.feed("content_block_delta", "{not json").out.empty());
  EXPECT_EQ(junk.end(), StreamEnd::open);
}

const char* kStatus = R"({"message_id":"msg_1","status":"error","created_at":"2025-01-02T03:04:05.123456Z",
  "updated_at":"2025-01-02T03:04:06.000000Z","completed_at":"2025-01-02T03:04:06.000000Z",
  "error_message":"interrupted by restart","stream_type":"chat_completion",
  "metadata":{"message_count":1,"thinking_enabled":false,"model":"default","events":7,"observers":0,
  "usage":{"input_tokens":3,"output_tokens":4},"queue_position":null}})";

TEST(CliFormat, StatusIsKeyValueLines) {
  EXPECT_EQ(format_status(json::parse(kStatus)),
            "id: msg_1\nstatus: error\nmodel: default\ncreated: 2025-01-02T03:04:05.123456Z\n"
            "updated: 2025-01-02T03:04:06.000000Z\ncompleted: 2025-01-02T03:04:06.000000Z\n"
            "error: interrupted by restart\nusage: 3 input tokens, 4 output tokens\nevents: 7\nobservers: 0\n");
  const auto pending = json::parse(
      R"({"message_id":"m","status":"pending","completed_at":null,"error_message":null,"metadata":{"queue_position":2}})");
  EXPECT_EQ(format_status(pending),
            "id: m\nstatus: pending\nmodel: -\ncreated: -\nupdated: -\ncompleted: -\nqueue position: 2\n");
}

TEST(CliFormat, ListIsAnAlignedTable) {
  std::vector<json::value> rows{json::parse(kStatus),
                                json::parse(R"({"message_id":"a-much-longer-id","status":"completed",
      "created_at":"2025-01-02T03:04:07.000000Z","metadata":{"model":"m","usage":{"output_tokens":12}}})")};
  EXPECT_EQ(format_list(rows),
            "ID                STATUS     MODEL    CREATED              OUT TOKENS\n"
            "msg_1             error      default  2025-01-02 03:04:05  4\n"
            "a-much-longer-id  completed  m        2025-01-02 03:04:07  12\n");
  EXPECT_EQ(format_list({}), "ID  STATUS  MODEL  CREATED  OUT TOKENS\n");
}

TEST(CliFormat, ShortTime) {
  EXPECT_EQ(short_time("2025-01-02T03:04:05.123456Z"), "2025-01-02 03:04:05");
  EXPECT_EQ(short_time("-"), "-");
}

TEST(CliFormat, ProgressText) {
  EXPECT_EQ(format_progress(0, 0), "0 tokens \u00b7 0.0 tok/s \u00b7 0.0 s");
  EXPECT_EQ(format_progress(42, 2.0), "42 tokens \u00b7 21.0 tok/s \u00b7 2.0 s");
}

}  // namespace
}  // namespace spool::cli
