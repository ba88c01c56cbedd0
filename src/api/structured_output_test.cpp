#include "api/structured_output.hpp"
#include "api/chat_parser.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <string>

namespace spool {
namespace {

namespace json = boost::json;

// A request body with `fields` added to one user message.
std::string body_with(std::string_view fields) {
  return R"({"messages":[{"role":"user","content":"hi"}],)" + std::string(fields) + "}";
}

std::string first_loc(const Error& e) {
  if (!e.detail.is_array() || e.detail.as_array().empty()) return "";
  return json::serialize(e.detail.as_array()[0].as_object().at("loc"));
}

TEST(StructuredOutput, OutputConfigFormatAsTheAiSdkSendsIt) {
  auto r = parse_chat_request(body_with(
      R"("output_config":{"effort":"low","format":{"type":"json_schema","schema":{"type":"object",
         "properties":{"name":{"type":"string"}},"required":["name"],"additionalProperties":false}}})"));
  ASSERT_TRUE(r.ok()) << r.error().explanation;
  ASSERT_TRUE(r->output_format);
  EXPECT_EQ(r->output_format->kind, OutputFormat::Kind::json_schema);
  EXPECT_EQ(json::serialize(r->output_format->schema.at("required")), R"(["name"])");
  EXPECT_EQ(r->output_config.at("effort").as_string(), "low");  // kept as sent, for the anthropic engine
}

TEST(StructuredOutput, OutputConfigWithoutFormatConstrainsNothing) {
  auto r = parse_chat_request(body_with(R"("output_config":{"effort":"high"})"));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->output_format);
  EXPECT_EQ(r->output_config.size(), 1u);
}

TEST(StructuredOutput, OlderOutputFormatField) {
  auto r = parse_chat_request(body_with(R"("output_format":{"type":"json_schema","schema":{"type":"array"}})"));
  ASSERT_TRUE(r.ok()) << r.error().explanation;
  ASSERT_TRUE(r->output_format);
  EXPECT_EQ(r->output_format->schema.at("type").as_string(), "array");
  EXPECT_TRUE(r->output_config.empty());
}

TEST(StructuredOutput, OpenAiResponseFormat) {
  auto r = parse_chat_request(body_with(
      R"("response_format":{"type":"json_schema","json_schema":{"name":"person","strict":true,"schema":{"type":"object"}}})"));
  ASSERT_TRUE(r.ok()) << r.error().explanation;
  EXPECT_EQ(r->output_format->name, "person");
  EXPECT_EQ(r->output_format->strict, true);

  auto obj = parse_chat_request(body_with(R"("response_format":{"type":"json_object"})"));
  ASSERT_TRUE(obj.ok());
  EXPECT_EQ(obj->output_format->kind, OutputFormat::Kind::json_object);
  EXPECT_EQ(json::serialize(obj->output_format->schema), R"({"type":"object"})");

  auto text = parse_chat_request(body_with(R"("response_format":{"type":"text"})"));
  ASSERT_TRUE(text.ok());
  EXPECT_FALSE(text->output_format);
}

TEST(StructuredOutput, BadShapesNameTheField) {
  struct Case {
    const char* fields;
    const char* loc;
  };
  for (const Case& c : {
           Case{R"("output_config":"json")", R"(["body","output_config"])"},
           Case{R"("output_config":{"format":{"type":"json_object","schema":{}}})",
                R"(["body","output_config","format","type"])"},
           Case{R"("output_config":{"format":{"type":"json_schema"}})",
                R"(["body","output_config","format","schema"])"},
           Case{R"("output_format":{"type":"json_schema","schema":[1]})", R"(["body","output_format","schema"])"},
           Case{R"("response_format":{"type":"xml"})", R"(["body","response_format","type"])"},
           Case{R"("response_format":{"type":"json_schema"})", R"(["body","response_format","json_schema"])"},
           Case{R"("output_format":{"type":"json_schema","schema":{"type":"obj"}})",
                R"(["body","output_format","schema","type"])"},
           Case{R"("output_format":{"type":"json_schema","schema":{"properties":{"a":{"type":["string",3]}}}})",
                R"(["body","output_format","schema","properties","a","type"])"},
           Case{R"("output_format":{"type":"json_schema","schema":{"required":"a"}})",
                R"(["body","output_format","schema","required"])"},
           Case{R"("output_format":{"type":"json_schema","schema":{"anyOf":[]}})",
                R"(["body","output_format","schema","anyOf"])"},
           Case{R"("output_format":{"type":"json_schema","schema":{"items":{"minItems":-1}}})",
                R"(["body","output_format","schema","items","minItems"])"},
           Case{R"("output_format":{"type":"json_schema","schema":{"$ref":"#/$defs/missing"}})",
                R"(["body","output_format","schema","$ref"])"},
           Case{R"("output_format":{"type":"json_schema","schema":{"$ref":"https://example.com/s.json"}})",
                R"(["body","output_format","schema","$ref"])"},
       }) {
    auto r = parse_chat_request(body_with(c.fields));
    ASSERT_FALSE(r.ok()) << c.fields;
    EXPECT_EQ(r.error().code, Errc::invalid_request);
    EXPECT_EQ(first_loc(r.error()), c.loc) << c.fields;
  }
}

TEST(StructuredOutput, RefsToDefsAndTheRootResolve) {
  auto r = parse_chat_request(body_with(R"("output_format":{"type":"json_schema","schema":{
      "$defs":{"a/b":{"type":"string"},"node":{"type":"object","properties":{"next":{"$ref":"#"}}}},
      "properties":{"x":{"$ref":"#/$defs/a~1b"},"y":{"$ref":"#/$defs/node"}}}})"));
  EXPECT_TRUE(r.ok()) << r.error().explanation;
}

TEST(StructuredOutput, FormatGivenTwiceIsRefused) {
  auto r = parse_chat_request(body_with(R"("output_config":{"format":{"type":"json_schema","schema":{}}},
      "response_format":{"type":"json_object"})"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(first_loc(r.error()), R"(["body","response_format"])");
}

// A schema nesting `depth` objects in properties.
json::object nested(std::size_t depth) {
  json::object s{{"type", "string"}};
  for (std::size_t i = 0; i < depth; ++i) s = json::object{{"type", "object"}, {"properties", {{"a", s}}}};
  return s;
}

TEST(StructuredOutput, SchemaLimits) {
  Issues ok;
  check_json_schema(nested(kMaxSchemaDepth), json::array{"s"}, ok);
  EXPECT_TRUE(ok.empty());

  Issues deep;
  check_json_schema(nested(kMaxSchemaDepth + 1), json::array{"s"}, deep);
  EXPECT_FALSE(deep.empty());

  json::object props;
  for (std::size_t i = 0; i < kMaxSchemaNodes; ++i) props[std::to_string(i)] = json::object{{"type", "null"}};
  Issues wide;
  check_json_schema(json::object{{"properties", props}}, json::array{"s"}, wide);
  const Error e = wide.error();
  ASSERT_EQ(e.detail.as_array().size(), 1u);  // the limit is said once, not per subschema
  EXPECT_NE(e.explanation.find("more than"), std::string::npos) << e.explanation;
}

}  // namespace
}  // namespace spool
