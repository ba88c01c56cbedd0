#include "stream/events.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>

namespace spool {
namespace {
namespace json = boost::json;

TEST(Events, TextDeltaEscapesAndKeepsUtf8) {
  const std::string s = events::text_delta(2, "block_1", "a \"q\" \\ \n ünï ✓");
  json::value v = json::parse(s);
  EXPECT_EQ(v.at("delta").at("text").as_string(), "a \"q\" \\ \n ünï ✓");
  EXPECT_EQ(v.at("index").as_int64(), 2);
  EXPECT_NE(s.find("ünï ✓"), std::string::npos);  // not \u-escaped
}

TEST(Events, MessageDeltaAlwaysHasStopSequence) {
  json::value v = json::parse(events::message_delta("end_turn", std::nullopt, Usage{3, 4}));
  EXPECT_TRUE(v.at("delta").at("stop_sequence").is_null());
  EXPECT_EQ(v.at("usage").at("output_tokens").as_int64(), 4);
  json::value w = json::parse(events::message_delta("stop_sequence", std::string("END"), Usage{}));
  EXPECT_EQ(w.at("delta").at("stop_sequence").as_string(), "END");
}

TEST(Events, ContentBlockStartPutsTimestampAfterType) {
  const std::string s = events::content_block_start(0, "block_x", json::object{{"type", "text"}, {"text", ""}});
  EXPECT_EQ(s.find(R"("content_block":{"type":"text","start_timestamp":")") != std::string::npos, true) << s;
}

TEST(Events, PartialObject) {
  EXPECT_EQ(json::serialize(events::parse_partial_object("")), "{}");
  EXPECT_EQ(json::serialize(events::parse_partial_object(R"({"a":1})")), R"({"a":1})");
  EXPECT_EQ(json::serialize(events::parse_partial_object(R"({"a":"he)")), "{}");
  EXPECT_EQ(json::serialize(events::parse_partial_object(R"({"a":"hello","b":[1,2)")), R"({"a":"hello","b":[1,2]})");
  EXPECT_EQ(json::serialize(events::parse_partial_object(R"({"a":{"b":"c"},)")), R"({"a":{"b":"c"}})");
}

}  // namespace
}  // namespace spool

namespace spool {
namespace {

TEST(Events, InputJsonDeltaCarriesTheParsedInputOnlyWhenGiven) {
  EXPECT_EQ(
      events::input_json_delta(1, "block_b", R"({"a")", nullptr),
      R"({"type":"content_block_delta","index":1,"block_id":"block_b","delta":{"type":"input_json_delta","partial_json":"{\"a\""}})");
  const json::object whole{{"a", 1}};
  EXPECT_EQ(
      events::input_json_delta(1, "block_b", ":1}", &whole),
      R"({"type":"content_block_delta","index":1,"block_id":"block_b","delta":{"type":"input_json_delta","partial_json":":1}","partial_json_obj":{"a":1}}})");
}

TEST(Events, PartialObjectIsDepthBoundedAndLinear) {
  std::string deep;
  for (std::size_t i = 0; i < events::kMaxInputDepth - 1; ++i) deep += R"({"a":)";
  std::string closed = deep + "1" + std::string(events::kMaxInputDepth - 1, '}');
  EXPECT_EQ(events::parse_partial_object(closed).size(), 1u);                                 // 63 levels: parsed
  EXPECT_EQ(events::parse_partial_object(deep + "[1").size(), 1u);                            // 64 open: parsed, closed
  EXPECT_TRUE(events::parse_partial_object(deep + R"({"a":[1)").empty());                     // 65: left unparsed
  EXPECT_TRUE(events::parse_partial_object(R"({"a":)" + std::string(200'000, '[')).empty());  // far too deep
  // Long input parses in one pass: 2 MB of array elements, still open.
  std::string wide = R"({"items":[)";
  for (int i = 0; i < 200'000; ++i) wide += "123456789,";
  const auto t0 = std::chrono::steady_clock::now();
  const json::object o = events::parse_partial_object(wide);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ(o.at("items").as_array().size(), 200'000u);
}

}  // namespace
}  // namespace spool
