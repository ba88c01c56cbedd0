#include "stream/events.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

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
