#include "engine/schema_instance.hpp"

#include "stream/json_schema.hpp"

#include <boost/json/serialize.hpp>

#include <cmath>
#include <limits>
#include <optional>
#include <string_view>

namespace spool {
namespace json = boost::json;

namespace {

// Array items made when minItems asks for none (the instance shows one).
constexpr std::size_t kDefaultItems = 1;

// A number as JSON: whole values as integers (so 3 is "3", not "3E0").
json::value number_value(double d) {
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return static_cast<std::int64_t>(d);
  return d;
}

// The non-negative integer keyword `key` of `s`, or `fallback`.
std::size_t size_keyword(const json::object& s, std::string_view key, std::size_t fallback) {
  const json::value* v = s.if_contains(key);
  if (v && v->is_uint64()) return static_cast<std::size_t>(v->as_uint64());
  if (v && v->is_int64() && v->as_int64() >= 0) return static_cast<std::size_t>(v->as_int64());
  return fallback;
}

// The number keyword `key` of `s`, if it is a number.
std::optional<double> number_keyword(const json::object& s, std::string_view key) {
  const json::value* v = s.if_contains(key);
  if (v && v->is_number()) return v->to_number<double>();
  return std::nullopt;
}

// An example string of `format` (the formats the AI SDK keeps), or nullopt.
std::optional<std::string_view> format_example(std::string_view format) {
  if (format == "date-time") return "2024-01-01T00:00:00Z";
  if (format == "date") return "2024-01-01";
  if (format == "time") return "00:00:00";
  if (format == "duration") return "P1D";
  if (format == "email") return "mock@example.com";
  if (format == "hostname") return "example.com";
  if (format == "uri" || format == "url") return "https://example.com/";
  if (format == "ipv4") return "127.0.0.1";
  if (format == "ipv6") return "::1";
  if (format == "uuid") return "00000000-0000-4000-8000-000000000000";
  return std::nullopt;
}

// The type to make for `s`: its type (the first non-null one of a list), else what its keywords imply.
std::string type_of(const json::object& s) {
  if (const json::value* t = s.if_contains("type")) {
    if (t->is_string()) return std::string(t->as_string());
    if (t->is_array() && !t->as_array().empty()) {
      for (const auto& x : t->as_array()) {
        if (x.is_string() && x.as_string() != "null") return std::string(x.as_string());
      }
      return "null";
    }
  }
  if (s.contains("properties") || s.contains("required") || s.contains("additionalProperties")) return "object";
  if (s.contains("items") || s.contains("prefixItems")) return "array";
  return "null";
}

// `a` with allOf's `b` folded in: properties and required joined, other keywords kept from `a`.
void fold_into(json::object& a, const json::object& b) {
  for (const auto& kv : b) {
    json::value* mine = a.if_contains(kv.key());
    if (!mine) {
      a[kv.key()] = kv.value();
    } else if (kv.key() == "properties" && mine->is_object() && kv.value().is_object()) {
      for (const auto& p : kv.value().as_object()) mine->as_object()[p.key()] = p.value();
    } else if (kv.key() == "required" && mine->is_array() && kv.value().is_array()) {
      for (const auto& r : kv.value().as_array()) mine->as_array().push_back(r);
    }
  }
}

class Generator {
 public:
  Generator(const json::object& root, bool minimal) : root_(root), minimal_(minimal) {}

  // An instance of `schema`, `depth` levels into the value; nullopt with why_ set when none fits.
  std::optional<json::value> make(const json::value& schema, std::size_t depth);
  const std::string& why() const { return why_; }

 private:
  std::optional<json::value> make_object(const json::object& s, std::size_t depth);
  std::optional<json::value> make_array(const json::object& s, std::size_t depth);
  std::optional<json::value> make_branch(const json::array& branches, std::size_t depth);
  std::optional<json::value> make_typed(const json::object& s, std::size_t depth);
  std::optional<json::value> fail(std::string why) {
    if (why_.empty()) why_ = std::move(why);
    return std::nullopt;
  }

  json::value root_;
  bool minimal_;           // only what is required
  std::size_t steps_ = 0;  // subschemas visited, failed attempts included: bounds the work and the size
  std::string why_;
};

std::optional<json::value> Generator::make(const json::value& schema, std::size_t depth) {
  if (depth > kMaxInstanceDepth) return fail("an instance nests deeper than " + std::to_string(kMaxInstanceDepth));
  if (++steps_ > kMaxInstanceSteps)
    return fail("making an instance takes more than " + std::to_string(kMaxInstanceSteps) + " steps");
  if (schema.is_bool())
    return schema.as_bool() ? std::optional<json::value>(nullptr) : fail("the schema false has no instance");
  if (!schema.is_object()) return fail("a schema is neither an object nor a boolean");
  const json::object& s = schema.as_object();
  if (const json::value* ref = s.if_contains("$ref")) {
    const json::value* target = ref->is_string() ? resolve_local_ref(root_, ref->as_string()) : nullptr;
    if (!target) return fail("a $ref does not resolve");
    return make(*target, depth + 1);
  }
  if (const json::value* c = s.if_contains("const")) return *c;
  if (const json::value* e = s.if_contains("enum"); e && e->is_array() && !e->as_array().empty()) {
    return e->as_array().front();
  }
  if (const json::value* all = s.if_contains("allOf"); all && all->is_array()) {
    json::object merged = s;
    merged.erase("allOf");
    for (const auto& sub : all->as_array()) {
      const json::value* target =
          sub.is_object() && sub.as_object().contains("$ref") && sub.as_object().at("$ref").is_string()
              ? resolve_local_ref(root_, sub.as_object().at("$ref").as_string())
              : &sub;
      if (target && target->is_object()) fold_into(merged, target->as_object());
    }
    return make(merged, depth + 1);
  }
  for (std::string_view key : {"anyOf", "oneOf"}) {
    if (const json::value* b = s.if_contains(key); b && b->is_array()) return make_branch(b->as_array(), depth);
  }
  return make_typed(s, depth);
}

// The first branch of anyOf/oneOf that has an instance.
std::optional<json::value> Generator::make_branch(const json::array& branches, std::size_t depth) {
  for (const auto& b : branches) {
    if (auto v = make(b, depth + 1)) {
      why_.clear();
      return v;
    }
  }
  return fail("no branch of anyOf/oneOf has an instance");
}

std::optional<json::value> Generator::make_typed(const json::object& s, std::size_t depth) {
  const std::string type = type_of(s);
  if (type == "object") return make_object(s, depth);
  if (type == "array") return make_array(s, depth);
  if (type == "boolean") return json::value(true);
  if (type == "null") return json::value(nullptr);
  if (type == "string") {
    const json::value* f = s.if_contains("format");
    std::string text(f && f->is_string() ? format_example(f->as_string()).value_or("mock") : "mock");
    const std::size_t min_len = size_keyword(s, "minLength", 0);
    const std::size_t max_len = size_keyword(s, "maxLength", std::numeric_limits<std::size_t>::max());
    if (min_len > max_len) return fail("a string's minLength exceeds its maxLength");
    if (text.size() < min_len) text.append(min_len - text.size(), 'x');
    if (text.size() > max_len) text.resize(max_len);
    return json::value(text);
  }
  if (type != "number" && type != "integer") return fail("unknown type '" + type + "'");
  const bool integer = type == "integer";
  const auto bound = [&](std::string_view incl, std::string_view excl, int dir) -> std::optional<double> {
    std::optional<double> b = number_keyword(s, incl);
    const json::value* ex = s.if_contains(excl);
    const bool exclusive_flag = ex && ex->is_bool() && ex->as_bool();  // draft 4
    if (auto e = number_keyword(s, excl)) return integer ? std::floor(*e * dir) / dir + dir : *e + dir * 0.5;
    if (b && exclusive_flag) return integer ? std::floor(*b * dir) / dir + dir : *b + dir * 0.5;
    if (b && integer) return dir > 0 ? std::ceil(*b) : std::floor(*b);
    return b;
  };
  const std::optional<double> lo = bound("minimum", "exclusiveMinimum", 1);
  const std::optional<double> hi = bound("maximum", "exclusiveMaximum", -1);
  if (lo && hi && *lo > *hi) return fail("a number's bounds leave no value");
  double v = 0;
  if (lo && v < *lo) v = *lo;
  if (hi && v > *hi) v = *hi;
  return number_value(v);
}

std::optional<json::value> Generator::make_object(const json::object& s, std::size_t depth) {
  json::object out;
  const json::value* req = s.if_contains("required");
  auto required = [&](std::string_view name) {
    if (!req || !req->is_array()) return false;
    for (const auto& r : req->as_array()) {
      if (r.is_string() && r.as_string() == name) return true;
    }
    return false;
  };
  if (const json::value* props = s.if_contains("properties"); props && props->is_object()) {
    for (const auto& kv : props->as_object()) {
      if (minimal_ && !required(kv.key())) continue;
      auto v = make(kv.value(), depth + 1);
      if (v) {
        out[kv.key()] = std::move(*v);
      } else if (required(kv.key())) {
        return std::nullopt;
      } else {
        why_.clear();  // an optional property that cannot be made is left out
      }
    }
  }
  if (req && req->is_array()) {
    const json::value* extra = s.if_contains("additionalProperties");
    for (const auto& r : req->as_array()) {
      if (!r.is_string() || out.contains(r.as_string())) continue;
      auto v = extra && extra->is_object() ? make(*extra, depth + 1) : std::optional<json::value>(nullptr);
      if (!v) return std::nullopt;
      out[r.as_string()] = std::move(*v);
    }
  }
  return json::value(std::move(out));
}

std::optional<json::value> Generator::make_array(const json::object& s, std::size_t depth) {
  json::array out;
  const json::value* items = s.if_contains("items");
  const json::value* prefix = s.if_contains("prefixItems");
  const json::array* tuple = prefix && prefix->is_array() ? &prefix->as_array()
                             : items && items->is_array() ? &items->as_array()
                                                          : nullptr;  // draft 4's items list
  const std::size_t min_items = size_keyword(s, "minItems", 0);
  const std::size_t max_items = size_keyword(s, "maxItems", std::numeric_limits<std::size_t>::max());
  if (min_items > max_items) return fail("an array's minItems exceeds its maxItems");
  const std::size_t shown = minimal_ ? 0 : std::max(kDefaultItems, tuple ? tuple->size() : 0);
  const std::size_t count = std::min(std::max(min_items, shown), max_items);
  const json::value any(true);
  const json::value& rest = items && !items->is_array() ? *items : any;
  for (std::size_t i = 0; i < count; ++i) {
    auto v = make(tuple && i < tuple->size() ? (*tuple)[i] : rest, depth + 1);
    if (!v && i >= min_items) {  // the items past minItems were only for show
      why_.clear();
      break;
    }
    if (!v) return std::nullopt;
    out.push_back(std::move(*v));
  }
  return json::value(std::move(out));
}

// `s` as a JSON string literal.
std::string quoted(std::string_view s) { return json::serialize(json::value(s)); }

void append_spaced(const json::value& v, std::string& out) {
  if (v.is_object()) {
    out += '{';
    bool first = true;
    for (const auto& kv : v.as_object()) {
      if (!first) out += ", ";
      first = false;
      out += quoted(kv.key());
      out += ": ";
      append_spaced(kv.value(), out);
    }
    out += '}';
  } else if (v.is_array()) {
    out += '[';
    bool first = true;
    for (const auto& x : v.as_array()) {
      if (!first) out += ", ";
      first = false;
      append_spaced(x, out);
    }
    out += ']';
  } else {
    out += json::serialize(v);
  }
}

}  // namespace

Result<json::value> schema_instance(const json::object& schema, bool minimal) {
  Generator g(schema, minimal);
  auto v = g.make(json::value(schema), 0);
  if (!v) return make_error(Errc::invalid_request, "no instance of the schema fits the mock's limits: " + g.why());
  return std::move(*v);
}

std::string spaced_json(const json::value& v) {
  std::string out;
  append_spaced(v, out);
  return out;
}

}  // namespace spool
