#include "api/chat_schema.hpp"

#include <boost/json/serialize.hpp>

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace spool {
namespace json = boost::json;

namespace {

// A loc as text: "body.messages.0.content".
std::string loc_text(const json::array& loc) {
  std::string where;
  for (const auto& p : loc) {
    if (!where.empty()) where += '.';
    where += p.is_string() ? std::string(p.as_string()) : json::serialize(p);
  }
  return where;
}

}  // namespace

void Issues::add(std::string_view type, const json::array& loc, std::string_view msg) {
  if (list_.size() >= kMaxIssues) {
    ++more_;
    return;
  }
  list_.push_back(json::object{{"type", type}, {"loc", loc}, {"msg", msg}});
}

Error Issues::error() {
  Error e{Errc::invalid_request, "Request validation failed", nullptr};
  if (!list_.empty()) {
    const auto& first = list_.front().as_object();
    e.explanation = loc_text(first.at("loc").as_array()) + ": " + std::string(first.at("msg").as_string());
    const std::size_t others = list_.size() - 1 + more_;
    if (others > 0) e.explanation += fmt::format(" (and {} more)", others);
  }
  if (more_ > 0) {
    list_.push_back(json::object{
        {"type", "too_many_errors"}, {"loc", json::array{"body"}}, {"msg", fmt::format("and {} more", more_)}});
  }
  e.detail = std::move(list_);
  return e;
}

json::array at(const json::array& base, json::value key) {
  json::array a = base;
  a.push_back(std::move(key));
  return a;
}

const json::value* field(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return nullptr;
  return &it->value();
}

std::optional<std::string> get_string(const json::object& o, std::string_view key, const json::array& loc, Issues& is,
                                      bool required) {
  const json::value* v = field(o, key);
  if (!v) {
    if (required) is.add("missing", at(loc, json::value(key)), "Field required");
    return std::nullopt;
  }
  if (!v->is_string()) {
    is.add("string_type", at(loc, json::value(key)), "Input should be a valid string");
    return std::nullopt;
  }
  return std::string(v->as_string());
}

std::optional<double> get_number(const json::object& o, std::string_view key, const json::array& loc, Issues& is) {
  const json::value* v = field(o, key);
  if (!v) return std::nullopt;
  if (v->is_double()) return v->as_double();
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  if (v->is_uint64()) return static_cast<double>(v->as_uint64());
  is.add("float_type", at(loc, json::value(key)), "Input should be a valid number");
  return std::nullopt;
}

std::optional<std::int64_t> get_int(const json::object& o, std::string_view key, const json::array& loc, Issues& is) {
  const json::value* v = field(o, key);
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return std::numeric_limits<std::int64_t>::max();
  if (v->is_double()) {
    const double d = v->as_double();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e18) return static_cast<std::int64_t>(d);
  }
  is.add("int_type", at(loc, json::value(key)), "Input should be a valid integer");
  return std::nullopt;
}

std::optional<bool> get_bool(const json::object& o, std::string_view key, const json::array& loc, Issues& is) {
  const json::value* v = field(o, key);
  if (!v) return std::nullopt;
  if (!v->is_bool()) {
    is.add("bool_type", at(loc, json::value(key)), "Input should be a valid boolean");
    return std::nullopt;
  }
  return v->as_bool();
}

}  // namespace spool
