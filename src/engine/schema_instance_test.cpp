#include "engine/schema_instance.hpp"

#include "stream/json_schema.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>

namespace spool {
namespace {

namespace json = boost::json;

// A small JSON Schema checker for the keywords the generator covers: whether `v` is valid
// against `s` (in `root`).
bool valid(const json::value& v, const json::value& s, const json::value& root);

bool has_type(const json::value& v, std::string_view t) {
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "string") return v.is_string();
  if (t == "integer")
    return v.is_int64() || v.is_uint64() || (v.is_double() && v.as_double() == std::floor(v.as_double()));
  if (t == "number") return v.is_number();
  if (t == "boolean") return v.is_bool();
  return t == "null" && v.is_null();
}

bool valid_object(const json::object& o, const json::object& s, const json::value& root) {
  const json::value* props = s.if_contains("properties");
  if (const json::value* req = s.if_contains("required")) {
    for (const auto& r : req->as_array()) {
      if (!o.contains(r.as_string())) return false;
    }
  }
  for (const auto& kv : o) {
    const json::value* sub = props ? props->as_object().if_contains(kv.key()) : nullptr;
    if (!sub) sub = s.if_contains("additionalProperties");
    if (sub && !valid(kv.value(), *sub, root)) return false;
  }
  return true;
}

bool valid_array(const json::array& a, const json::object& s, const json::value& root) {
  if (const json::value* n = s.if_contains("minItems"); n && a.size() < n->to_number<std::size_t>()) return false;
  if (const json::value* n = s.if_contains("maxItems"); n && a.size() > n->to_number<std::size_t>()) return false;
  const json::value* prefix = s.if_contains("prefixItems");
  for (std::size_t i = 0; i < a.size(); ++i) {
    const json::value* sub = prefix && i < prefix->as_array().size() ? &prefix->as_array()[i] : s.if_contains("items");
    if (sub && !valid(a[i], *sub, root)) return false;
  }
  return true;
}

bool valid_scalar(const json::value& v, const json::object& s) {
  if (v.is_string()) {
    const std::size_t n = v.as_string().size();
    if (const json::value* m = s.if_contains("minLength"); m && n < m->to_number<std::size_t>()) return false;
    if (const json::value* m = s.if_contains("maxLength"); m && n > m->to_number<std::size_t>()) return false;
  }
  if (v.is_number()) {
    const double d = v.to_number<double>();
    auto num = [&](const char* k) { return s.contains(k) ? s.at(k).to_number<double>() : std::nan(""); };
    if (d < num("minimum") || d > num("maximum") || d <= num("exclusiveMinimum") || d >= num("exclusiveMaximum")) {
      return false;
    }
  }
  return true;
}

bool valid(const json::value& v, const json::value& schema, const json::value& root) {
  if (schema.is_bool()) return schema.as_bool();
  const json::object& s = schema.as_object();
  if (const json::value* ref = s.if_contains("$ref")) return valid(v, *resolve_local_ref(root, ref->as_string()), root);
  if (const json::value* c = s.if_contains("const"); c && v != *c) return false;
  if (const json::value* e = s.if_contains("enum")) {
    if (std::find(e->as_array().begin(), e->as_array().end(), v) == e->as_array().end()) return false;
  }
  if (const json::value* t = s.if_contains("type")) {
    const bool ok = t->is_string() ? has_type(v, t->as_string())
                                   : std::any_of(t->as_array().begin(), t->as_array().end(),
                                                 [&](const json::value& x) { return has_type(v, x.as_string()); });
    if (!ok) return false;
  }
  if (const json::value* any = s.if_contains("anyOf")) {
    auto ok = [&](const json::value& b) { return valid(v, b, root); };
    if (std::none_of(any->as_array().begin(), any->as_array().end(), ok)) return false;
  }
  if (const json::value* one = s.if_contains("oneOf")) {
    auto ok = [&](const json::value& b) { return valid(v, b, root); };
    if (std::count_if(one->as_array().begin(), one->as_array().end(), ok) != 1) return false;
  }
  if (const json::value* all = s.if_contains("allOf")) {
    for (const auto& b : all->as_array()) {
      if (!valid(v, b, root)) return false;
    }
  }
  if (v.is_object()) return valid_object(v.as_object(), s, root);
  if (v.is_array()) return valid_array(v.as_array(), s, root);
  return valid_scalar(v, s);
}

// The instance of `schema_text`, checked valid and round-tripped through spaced_json.
json::value instance_of(std::string_view schema_text) {
  const json::value schema = json::parse(schema_text);
  auto r = schema_instance(schema.as_object());
  EXPECT_TRUE(r.ok()) << schema_text << ": " << (r.ok() ? "" : r.error().explanation);
  if (!r.ok()) return nullptr;
  EXPECT_TRUE(valid(*r, schema, schema)) << schema_text << " → " << json::serialize(*r);
  EXPECT_EQ(json::parse(spaced_json(*r)), *r);
  return *r;
}

TEST(SchemaInstance, EveryKindValidates) {
  for (const char* s : {
           R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":18},
               "tags":{"type":"array","items":{"type":"string","enum":["a","b"]},"minItems":2},
               "ok":{"type":"boolean"},"none":{"type":"null"},"score":{"type":"number","exclusiveMaximum":-2.5}},
               "required":["name","age","tags"],"additionalProperties":false})",
           R"({"type":"string","minLength":10,"maxLength":12})",
           R"({"type":"string","maxLength":2})",
           R"({"type":"string","format":"email"})",
           R"({"type":["null","integer"],"exclusiveMinimum":7})",
           R"({"const":{"k":[1,2]}})",
           R"({"anyOf":[false,{"type":"number","minimum":1.5,"maximum":2}]})",
           R"({"oneOf":[{"type":"string"},{"type":"integer"}]})",
           R"({"allOf":[{"properties":{"a":{"type":"integer"}},"required":["a"]},{"required":["b"]}]})",
           R"({"type":"array","prefixItems":[{"type":"integer"},{"type":"string"}],"items":false})",
           R"({"type":"array","maxItems":0})",
           R"({"$defs":{"p":{"type":"object","properties":{"x":{"type":"number"}},"required":["x"]}},
               "type":"object","properties":{"points":{"type":"array","items":{"$ref":"#/$defs/p"}}},"required":["points"]})",
           R"({})",
       }) {
    instance_of(s);
  }
}

TEST(SchemaInstance, RecursionStopsAtTheLimits) {
  // A tree whose children are optional or an array: the instance stops where recursion would not.
  const json::value tree = instance_of(R"({"$defs":{"node":{"type":"object","properties":{
      "value":{"type":"integer"},"children":{"type":"array","items":{"$ref":"#/$defs/node"}},
      "left":{"$ref":"#/$defs/node"},"right":{"$ref":"#/$defs/node"}},"required":["value","children"]}},
      "$ref":"#/$defs/node"})");
  EXPECT_TRUE(tree.is_object());
  EXPECT_LT(spaced_json(tree).size(), 200'000u);
}

TEST(SchemaInstance, NoInstanceIsAnError) {
  for (
      const char* s : {
          R"({"type":"object","properties":{"a":false},"required":["a"]})",
          R"({"$defs":{"n":{"type":"object","properties":{"next":{"$ref":"#/$defs/n"}},"required":["next"]}},"$ref":"#/$defs/n"})",
          R"({"type":"integer","minimum":3,"maximum":2.5})",
          R"({"type":"array","minItems":5000})",
      }) {
    auto r = schema_instance(json::parse(s).as_object());
    ASSERT_FALSE(r.ok()) << s;
    EXPECT_EQ(r.error().code, Errc::invalid_request);
  }
}

TEST(SchemaInstance, MinimalMakesOnlyWhatIsRequired) {
  const auto schema = json::parse(R"({"type":"object","properties":{"a":{"type":"string"},
      "b":{"type":"array","items":{"type":"integer"}},"c":{"type":"array","minItems":1,"items":{"type":"integer"}}},
      "required":["b","c"]})");
  auto r = schema_instance(schema.as_object(), true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(json::serialize(*r), R"({"b":[],"c":[0]})");
  EXPECT_EQ(json::serialize(*schema_instance(json::object{{"type", "object"}}, true)), "{}");
}

TEST(SchemaInstance, SpacedJsonSplitsIntoWords) {
  EXPECT_EQ(spaced_json(json::parse(R"({"a":[1,"x y"],"b":{}})")), R"({"a": [1, "x y"], "b": {}})");
}

}  // namespace
}  // namespace spool
