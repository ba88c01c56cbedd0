#include "api/structured_output.hpp"

#include "stream/json_schema.hpp"

#include <algorithm>
#include <array>
#include <string_view>

namespace spool {
namespace json = boost::json;

namespace {

constexpr std::array<std::string_view, 7> kTypes = {"object",  "array",   "string", "number",
                                                    "integer", "boolean", "null"};

// Walks one schema, counting subschemas against the limits.
class SchemaChecker {
 public:
  SchemaChecker(const json::object& root, Issues& is) : root_(root), is_(is) {}

  // Checks the subschema `v` at `loc`, `depth` subschemas below the root.
  void check(const json::value& v, const json::array& loc, std::size_t depth);

 private:
  void check_type(const json::value& t, const json::array& loc);
  void check_map(const json::object& s, std::string_view key, const json::array& loc, std::size_t depth);
  void check_list(const json::object& s, std::string_view key, const json::array& loc, std::size_t depth);
  void check_keywords(const json::object& s, const json::array& loc);

  json::value root_;
  Issues& is_;
  std::size_t nodes_ = 0;
  bool over_ = false;  // a limit was hit: reported once, the rest is not walked
};

void SchemaChecker::check(const json::value& v, const json::array& loc, std::size_t depth) {
  if (over_) return;
  if (v.is_bool()) return;
  if (!v.is_object()) {
    is_.add("dict_type", loc, "Input should be a valid JSON schema (an object or a boolean)");
    return;
  }
  if (++nodes_ > kMaxSchemaNodes || depth > kMaxSchemaDepth) {
    over_ = true;
    is_.add("value_error", loc,
            nodes_ > kMaxSchemaNodes
                ? "the schema has more than " + std::to_string(kMaxSchemaNodes) + " subschemas"
                : "the schema nests subschemas more than " + std::to_string(kMaxSchemaDepth) + " deep");
    return;
  }
  const json::object& s = v.as_object();
  if (const json::value* t = field(s, "type")) check_type(*t, at(loc, "type"));
  check_keywords(s, loc);
  for (std::string_view key : {"properties", "$defs", "definitions", "patternProperties"}) {
    check_map(s, key, loc, depth);
  }
  for (std::string_view key : {"anyOf", "oneOf", "allOf", "prefixItems"}) check_list(s, key, loc, depth);
  for (std::string_view key : {"additionalProperties", "not", "contains", "if", "then", "else"}) {
    if (const json::value* sub = field(s, key)) check(*sub, at(loc, json::value(key)), depth + 1);
  }
  if (const json::value* items = field(s, "items")) {
    if (items->is_array()) {
      check_list(s, "items", loc, depth);
    } else {
      check(*items, at(loc, "items"), depth + 1);
    }
  }
}

void SchemaChecker::check_type(const json::value& t, const json::array& loc) {
  auto known = [](const json::value& x) {
    if (!x.is_string()) return false;
    for (auto name : kTypes) {
      if (x.as_string() == name) return true;
    }
    return false;
  };
  const bool ok =
      t.is_array() ? !t.as_array().empty() && std::all_of(t.as_array().begin(), t.as_array().end(), known) : known(t);
  if (!ok) {
    is_.add("literal_error", loc,
            "Input should be 'object', 'array', 'string', 'number', 'integer', 'boolean' or 'null', or a list of them");
  }
}

// A keyword whose value is a map of subschemas (properties, $defs, ...).
void SchemaChecker::check_map(const json::object& s, std::string_view key, const json::array& loc, std::size_t depth) {
  const json::value* m = field(s, key);
  if (!m) return;
  const json::array mloc = at(loc, json::value(key));
  if (!m->is_object()) {
    is_.add("dict_type", mloc, "Input should be a valid dictionary");
    return;
  }
  for (const auto& kv : m->as_object()) check(kv.value(), at(mloc, json::value(kv.key())), depth + 1);
}

// A keyword whose value is a non-empty list of subschemas (anyOf, oneOf, ...).
void SchemaChecker::check_list(const json::object& s, std::string_view key, const json::array& loc, std::size_t depth) {
  const json::value* l = field(s, key);
  if (!l) return;
  const json::array lloc = at(loc, json::value(key));
  if (!l->is_array() || l->as_array().empty()) {
    is_.add("list_type", lloc, "Input should be a non-empty list of schemas");
    return;
  }
  std::size_t i = 0;
  for (const auto& sub : l->as_array()) check(sub, at(lloc, i++), depth + 1);
}

// The keywords that are not subschemas: required, enum, $ref and the size bounds.
void SchemaChecker::check_keywords(const json::object& s, const json::array& loc) {
  if (const json::value* r = field(s, "required")) {
    const bool ok = r->is_array() && std::all_of(r->as_array().begin(), r->as_array().end(),
                                                 [](const json::value& x) { return x.is_string(); });
    if (!ok) is_.add("list_type", at(loc, "required"), "Input should be a valid list of strings");
  }
  if (const json::value* e = field(s, "enum"); e && (!e->is_array() || e->as_array().empty())) {
    is_.add("list_type", at(loc, "enum"), "Input should be a non-empty list");
  }
  if (const json::value* ref = field(s, "$ref")) {
    if (!ref->is_string()) {
      is_.add("string_type", at(loc, "$ref"), "Input should be a valid string");
    } else if (!resolve_local_ref(root_, ref->as_string())) {
      is_.add("value_error", at(loc, "$ref"),
              "'" + std::string(ref->as_string()) + "' does not name a schema in this one (such as '#/$defs/Name')");
    }
  }
  for (std::string_view key : {"minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"}) {
    const json::value* n = field(s, key);
    if (n && !(n->is_uint64() || (n->is_int64() && n->as_int64() >= 0))) {
      is_.add("int_type", at(loc, json::value(key)), "Input should be a non-negative integer");
    }
  }
}

// The schema of a format object {type: "json_schema", schema} (output_config.format, output_format).
std::optional<OutputFormat> anthropic_format(const json::value& v, const json::array& loc, Issues& is) {
  if (!v.is_object()) {
    is.add("dict_type", loc, "Input should be a valid dictionary");
    return std::nullopt;
  }
  const json::object& f = v.as_object();
  auto type = get_string(f, "type", loc, is, true);
  if (type && *type != "json_schema") is.add("literal_error", at(loc, "type"), "Input should be 'json_schema'");
  const json::value* schema = field(f, "schema");
  if (!schema) is.add("missing", at(loc, "schema"), "Field required");
  if (schema && !schema->is_object()) is.add("dict_type", at(loc, "schema"), "Input should be a valid dictionary");
  if (!type || *type != "json_schema" || !schema || !schema->is_object()) return std::nullopt;
  check_json_schema(schema->as_object(), at(loc, "schema"), is);
  return OutputFormat{OutputFormat::Kind::json_schema, schema->as_object(), {}, std::nullopt};
}

// OpenAI's response_format: {type: text|json_object|json_schema, json_schema: {name, schema, strict}};
// nullopt for text.
std::optional<OutputFormat> openai_format(const json::value& v, const json::array& loc, Issues& is) {
  if (!v.is_object()) {
    is.add("dict_type", loc, "Input should be a valid dictionary");
    return std::nullopt;
  }
  const json::object& f = v.as_object();
  auto type = get_string(f, "type", loc, is, true);
  if (!type || *type == "text") return std::nullopt;
  if (*type == "json_object") {
    return OutputFormat{OutputFormat::Kind::json_object, json::object{{"type", "object"}}, {}, std::nullopt};
  }
  if (*type != "json_schema") {
    is.add("literal_error", at(loc, "type"), "Input should be 'text', 'json_object' or 'json_schema'");
    return std::nullopt;
  }
  const json::array jloc = at(loc, "json_schema");
  const json::value* js = field(f, "json_schema");
  if (!js || !js->is_object()) {
    is.add(js ? "dict_type" : "missing", jloc, js ? "Input should be a valid dictionary" : "Field required");
    return std::nullopt;
  }
  OutputFormat out;
  if (auto name = get_string(js->as_object(), "name", jloc, is, false)) out.name = *name;
  out.strict = get_bool(js->as_object(), "strict", jloc, is);
  const json::value* schema = field(js->as_object(), "schema");
  if (!schema || !schema->is_object()) {
    is.add(schema ? "dict_type" : "missing", at(jloc, "schema"),
           schema ? "Input should be a valid dictionary" : "Field required");
    return std::nullopt;
  }
  check_json_schema(schema->as_object(), at(jloc, "schema"), is);
  out.schema = schema->as_object();
  return out;
}

// The output format the field `key` of `o` gives, if any, read by `read`.
template <typename Read>
std::optional<OutputFormat> format_field(const json::object& o, std::string_view key, const json::array& loc,
                                         Issues& is, Read read) {
  const json::value* v = field(o, key);
  if (!v) return std::nullopt;
  return read(*v, at(loc, json::value(key)), is);
}

}  // namespace

void check_json_schema(const json::object& schema, const json::array& loc, Issues& is) {
  SchemaChecker(schema, is).check(json::value(schema), loc, 0);
}

void parse_structured_output(const json::object& o, const json::array& loc, ChatRequest& req, Issues& is) {
  struct Found {
    std::optional<OutputFormat> format;
    json::array loc;
  };
  std::vector<Found> found;
  if (const json::value* oc = field(o, "output_config")) {
    const json::array cloc = at(loc, "output_config");
    if (!oc->is_object()) {
      is.add("dict_type", cloc, "Input should be a valid dictionary");
    } else {
      req.output_config = oc->as_object();
      if (const json::value* f = field(req.output_config, "format")) {
        found.push_back({anthropic_format(*f, at(cloc, "format"), is), at(cloc, "format")});
      }
    }
  }
  if (auto f = format_field(o, "output_format", loc, is, anthropic_format))
    found.push_back({f, at(loc, "output_format")});
  if (auto f = format_field(o, "response_format", loc, is, openai_format)) {
    found.push_back({f, at(loc, "response_format")});
  }
  if (found.size() > 1) {
    is.add("value_error", found[1].loc,
           "give the output format once: output_config.format, output_format or response_format");
    return;
  }
  if (!found.empty()) req.output_format = std::move(found.front().format);
}

}  // namespace spool
