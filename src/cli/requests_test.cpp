// Tests for the client's request building and answer interpretation.
#include "cli/requests.hpp"

#include <boost/json.hpp>

#include <gtest/gtest.h>

namespace spool::cli {
namespace {

namespace json = boost::json;

TEST(CliRequests, ChatBodyHasOnlyWhatWasGiven) {
  ChatParams p;
  p.prompt = "hello there";
  const json::value v = json::parse(chat_body(p));
  EXPECT_EQ(v, json::parse(R"({"max_tokens":1024,"messages":[{"role":"user","content":"hello there"}]})"));
}

TEST(CliRequests, ChatBodyCarriesEveryOption) {
  const ChatParams p{.prompt = "hi",
                     .model = "m1",
                     .system = "be brief",
                     .max_tokens = 7,
                     .temperature = 0.5,
                     .top_p = 0.25,
                     .stop_sequences = {"END", "\n\n"},
                     .thinking_budget = 2048};
  const json::value v = json::parse(chat_body(p));
  EXPECT_EQ(v, json::parse(R"({"model":"m1","max_tokens":7,"messages":[{"role":"user","content":"hi"}],
      "system":"be brief","temperature":0.5,"top_p":0.25,"stop_sequences":["END","\n\n"],
      "thinking":{"type":"enabled","budget_tokens":2048}})"));
}

TEST(CliRequests, BaseUrlIsNormalizedAndChecked) {
  EXPECT_EQ(*normalize_base_url("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
  EXPECT_EQ(*normalize_base_url("http://h:1/spool/"), "http://h:1/spool");
  EXPECT_EQ(*normalize_base_url("https://example.com//"), "https://example.com");
  for (const char* bad : {"", "127.0.0.1:8080", "ftp://h/", "http://h/?a=b", "http://h/#x", "http:///path", "nope"}) {
    auto r = normalize_base_url(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Errc::invalid_request);
    EXPECT_NE(r.error().explanation.find("--url"), std::string::npos);
  }
}

TEST(CliRequests, PercentEncodingKeepsUnreservedOnly) {
  EXPECT_EQ(percent_encode("msg_abc-1.2~x"), "msg_abc-1.2~x");
  EXPECT_EQ(percent_encode("a b/c?d#e%"), "a%20b%2Fc%3Fd%23e%25");
  EXPECT_EQ(percent_encode("\xc3\xa9"), "%C3%A9");
}

TEST(CliRequests, ListQueryLeavesOutEmptyParts) {
  EXPECT_EQ(list_query("", 0, ""), "");
  EXPECT_EQ(list_query("", 20, ""), "?limit=20");
  EXPECT_EQ(list_query("pending,processing", 5, "c/1"), "?status=pending,processing&limit=5&cursor=c%2F1");
}

TEST(CliRequests, ExitCodesFollowTheHttpStatus) {
  EXPECT_EQ(exit_code_for_http_status(401), exit_code::unauthorized);
  EXPECT_EQ(exit_code_for_http_status(404), exit_code::not_found);
  for (int s : {400, 409, 413, 429, 500, 502, 503, 529, 302})
    EXPECT_EQ(exit_code_for_http_status(s), exit_code::refused);
  EXPECT_NE(exit_codes_help().find("130"), std::string::npos);
}

TEST(CliRequests, ErrorExplanationReadsEveryBodyShape) {
  EXPECT_EQ(
      error_explanation(R"({"type":"error","error":{"type":"invalid_request_error","message":"Invalid Request Error",
      "detail":{"code":"INVALID_REQUEST_ERROR","explanation":"Stream with this message_id already exists"}},
      "request_id":null,"detail":"Stream with this message_id already exists"})"),
      "Stream with this message_id already exists");
  EXPECT_EQ(error_explanation(R"({"detail":"Stream with message_id x not found"})"),
            "Stream with message_id x not found");
  EXPECT_EQ(error_explanation(R"({"error":{"message":"Overloaded","detail":{"explanation":[]}},
      "detail":[{"type":"value_error","loc":["body","temperature"],"msg":"must be in [0,1]"},
                {"type":"missing","loc":["body","messages",0,"content"],"msg":"required"}]})"),
            "body.temperature: must be in [0,1]; body.messages.0.content: required");
  EXPECT_EQ(error_explanation(R"({"error":{"message":"Overloaded"}})"), "Overloaded");
  EXPECT_EQ(error_explanation("not json"), "");
  EXPECT_EQ(error_explanation("null"), "");
}

TEST(CliRequests, RouteNotFoundIsToldFromStreamNotFound) {
  EXPECT_TRUE(is_route_not_found(R"({"detail":"Not Found"})"));
  EXPECT_TRUE(is_route_not_found("<html>nginx</html>"));
  EXPECT_FALSE(is_route_not_found(R"({"detail":"Stream with message_id x not found"})"));
}

TEST(CliRequests, TransportReasonDropsTheUpstreamPrefix) {
  EXPECT_EQ(transport_reason(make_error(Errc::upstream, "upstream 127.0.0.1:9: connection refused")),
            "connection refused");
  EXPECT_EQ(
      transport_reason(make_error(Errc::upstream, "upstream [::1]:80: connect timeout: no connection within 5 ms")),
      "connect timeout: no connection within 5 ms");
  EXPECT_EQ(transport_reason(make_error(Errc::upstream, "cancelled")), "cancelled");
}

}  // namespace
}  // namespace spool::cli
