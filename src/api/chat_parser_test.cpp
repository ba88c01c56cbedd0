#include "api/chat_parser.hpp"

#include <gtest/gtest.h>
#include <boost/json/serialize.hpp>

#include <chrono>

namespace spool {
namespace {

Error parse_error(std::string_view body) {
  auto r = parse_chat_request(body);
  EXPECT_FALSE(r.ok()) << body;
  return r.ok() ? Error{} : r.error();
}

std::string first_loc(const Error& e) {
  if (!e.detail.is_array() || e.detail.as_array().empty()) return "";
  return boost::json::serialize(e.detail.as_array()[0].as_object().at("loc"));
}

TEST(ChatParser, MinimalRequest) {
  auto r = parse_chat_request(R"({"messages":[{"role":"user","content":"hi"}]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->model, "default");
  ASSERT_EQ(r->messages.size(), 1u);
  EXPECT_EQ(r->messages[0].content[0].text, "hi");
  EXPECT_EQ(r->message_count, 1);
}

TEST(ChatParser, FullRequestAndSystemMessagesMovedOut) {
  auto r = parse_chat_request(R"({
    "model":"m","max_tokens":5,"system":[{"type":"text","text":"a"},{"type":"text","text":"b"}],
    "temperature":0.5,"top_p":1,"top_k":3,"min_p":-1,"seed":7,"stop_sequences":["x"],
    "thinking":{"type":"enabled","budget_tokens":100},"metadata":{"user_id":"u","k":1},
    "tools":[{"name":"t","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"t"},
    "messages":[{"role":"system","content":"c"},{"role":"user","content":[{"type":"text","text":"q","cache_control":{}}]}],
    "unknown_field":true})");
  ASSERT_TRUE(r.ok()) << r.error().explanation;
  EXPECT_EQ(r->system, "a\nb\nc");
  EXPECT_EQ(r->message_count, 1);
  EXPECT_TRUE(r->thinking);
  EXPECT_FALSE(r->min_p.has_value());
  EXPECT_EQ(*r->top_k, 3);
  EXPECT_EQ(r->tool_choice->name, "t");
}

TEST(ChatParser, NullMeansAbsent) {
  auto r = parse_chat_request(
      R"({"model":null,"max_tokens":null,"system":null,"messages":[{"role":"user","content":"x"}]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->model, "default");
}

TEST(ChatParser, MalformedJson) {
  for (auto body : {"", "{", "{\"messages\":", "[1,2", "nul", "{\"a\":1}}"}) {
    Error e = parse_error(body);
    EXPECT_EQ(e.code, Errc::invalid_request);
    ASSERT_TRUE(e.detail.is_array()) << body;
    EXPECT_EQ(e.detail.as_array()[0].as_object().at("type").as_string(), "json_invalid");
  }
}

TEST(ChatParser, InvalidUtf8Rejected) {
  std::string body = "{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}";
  Error e = parse_error(body);
  EXPECT_EQ(e.code, Errc::invalid_request);
  EXPECT_NE(e.explanation.find("UTF-8"), std::string::npos) << e.explanation;
  // overlong encodings and surrogates are invalid too
  for (std::string bad : {std::string("\xc0\xaf"), std::string("\xed\xa0\x80")}) {
    EXPECT_FALSE(parse_chat_request("{\"messages\":[{\"role\":\"user\",\"content\":\"" + bad + "\"}]}").ok());
  }
}

TEST(ChatParser, WrongTypesNameTheField) {
  struct Case {
    const char* body;
    const char* loc;
  } cases[] = {
      {R"({"messages":"x"})", R"(["body","messages"])"},
      {R"({"messages":[{"role":"user","content":"x"}],"model":1})", R"(["body","model"])"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":"5"})", R"(["body","max_tokens"])"},
      {R"({"messages":[{"role":"user","content":"x"}],"stream":"yes"})", R"(["body","stream"])"},
      {R"({"messages":[{"role":"user","content":"x"}],"temperature":"hot"})", R"(["body","temperature"])"},
      {R"({"messages":[{"role":"user","content":"x"}],"temperature":1.5})", R"(["body","temperature"])"},
      {R"({"messages":[{"role":"user","content":"x"}],"top_p":-0.1})", R"(["body","top_p"])"},
      {R"({"messages":[{"role":"user","content":"x"}],"top_k":-1})", R"(["body","top_k"])"},
      {R"({"messages":[{"role":"user","content":"x"}],"stop_sequences":[1]})", R"(["body","stop_sequences",0])"},
      {R"({"messages":[{"role":"user","content":"x"}],"tools":{}})", R"(["body","tools"])"},
      {R"({"messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"maybe"}})",
       R"(["body","tool_choice","type"])"},
      {R"({"messages":[{"role":"user","content":"x"}],"thinking":true})", R"(["body","thinking"])"},
      {R"({"messages":[{"role":"user","content":"x"}],"metadata":[]})", R"(["body","metadata"])"},
      {R"({"messages":[{"role":"robot","content":"x"}]})", R"(["body","messages",0,"role"])"},
      {R"({"messages":[{"role":"user"}]})", R"(["body","messages",0,"content"])"},
      {R"({"messages":[{"role":"user","content":[{"type":"video"}]}]})", R"(["body","messages",0,"content",0,"type"])"},
      {R"({"messages":[{"role":"user","content":[{"type":"text","text":5}]}]})",
       R"(["body","messages",0,"content",0,"text"])"},
  };
  for (const auto& c : cases) {
    Error e = parse_error(c.body);
    EXPECT_EQ(first_loc(e), c.loc) << c.body;
  }
}

TEST(ChatParser, AnUnansweredToolUseIsNamed) {
  const Error e = parse_error(
      R"({"messages":[{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"text","text":"x"},)"
      R"({"type":"tool_use","id":"toolu_9","name":"t","input":{}}]}]})");
  EXPECT_EQ(e.code, Errc::invalid_request);
  EXPECT_EQ(e.explanation, "tool_use 'toolu_9' has no tool_result answering it");
}

TEST(ChatParser, Rules) {
  const char* bodies[] = {
      R"({"messages":[]})",
      R"({"messages":[{"role":"user","content":""}]})",
      R"({"messages":[{"role":"user","content":[]}]})",
      R"({"messages":[{"role":"user","content":"a"},{"role":"system","content":"s"}]})",
      R"({"messages":[{"role":"user","content":"a"}],"tools":[{"name":"t"},{"name":"t"}]})",
      R"({"messages":[{"role":"user","content":[{"type":"tool_use","id":"a","name":"t","input":{}}]}]})",
      R"({"messages":[{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"t","input":{}},{"type":"tool_use","id":"a","name":"t","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"a"}]}]})",
      R"({"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"zz"}]}]})",
      R"({"messages":[{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"t","input":{}},{"type":"tool_use","id":"b","name":"t","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"a"}]}]})",
      R"({"messages":[{"role":"user","content":"a"}],"tools":[{"name":"t"}],"tool_choice":{"type":"tool","name":"u"}})",
      // a trailing assistant message's tool_use, unanswered
      R"({"messages":[{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"t","input":{}}]}]})",
  };
  for (auto b : bodies) {
    Error e = parse_error(b);
    EXPECT_EQ(e.code, Errc::invalid_request) << b;
    EXPECT_TRUE(e.detail.is_null()) << b;
    EXPECT_FALSE(e.explanation.empty()) << b;
  }
}

TEST(ChatParser, ToolRoundTripIsValid) {
  auto r = parse_chat_request(
      R"({"messages":[{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"tool_use","id":"a_1","name":"t","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"a_1","content":[{"type":"text","text":"r"}]}]}]})");
  ASSERT_TRUE(r.ok()) << r.error().explanation;
  EXPECT_EQ(r->messages[2].content[0].text, "r");
}

TEST(ChatParser, UserIdTooLong) {
  std::string body =
      R"({"messages":[{"role":"user","content":"x"}],"metadata":{"user_id":")" + std::string(513, 'u') + "\"}}";
  Error e = parse_error(body);
  EXPECT_EQ(first_loc(e), R"(["body","metadata","user_id"])");
}

TEST(ChatParser, DeepNestingIsRejectedNotCrashing) {
  std::string body = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"metadata\":{\"k\":";
  body += std::string(100000, '[');
  Error e = parse_error(body);
  EXPECT_EQ(e.code, Errc::invalid_request);
}

}  // namespace
}  // namespace spool

namespace spool {
namespace {

TEST(ChatParser, IssuesStopAtFiftyThenSayHowManyMore) {
  std::string body = R"({"messages":[)";
  for (int i = 0; i < 100'000; ++i) body += i == 0 ? "1" : ",1";
  body += "]}";
  const auto t0 = std::chrono::steady_clock::now();
  Error e = parse_error(body);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  ASSERT_TRUE(e.detail.is_array());
  const auto& list = e.detail.as_array();
  ASSERT_EQ(list.size(), 51u);
  EXPECT_EQ(first_loc(e), R"(["body","messages",0])");
  EXPECT_EQ(list[49].at("loc").as_array()[2].to_number<std::int64_t>(), 49);
  EXPECT_EQ(list[50].at("type").as_string(), "too_many_errors");
  EXPECT_EQ(list[50].at("msg").as_string(), "and 99950 more");
  EXPECT_EQ(e.explanation, "body.messages.0: Input should be a valid dictionary (and 99999 more)");
}

TEST(ChatParser, OneIssueIsItsOwnExplanation) {
  Error e = parse_error(R"({"messages":[{"role":"robot","content":"x"}]})");
  ASSERT_EQ(e.detail.as_array().size(), 1u);
  EXPECT_EQ(e.explanation, "body.messages.0.role: Input should be 'user', 'assistant' or 'system'");
}

}  // namespace
}  // namespace spool
