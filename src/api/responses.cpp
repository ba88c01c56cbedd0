#include "api/responses.hpp"

#include "core/clock.hpp"

#include <boost/json/serialize.hpp>

namespace spool {
namespace json = boost::json;

http::Response json_response(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

json::value time_or_null(const std::optional<SysTime>& t) {
  return t ? json::value(rfc3339(*t)) : json::value(nullptr);
}

std::string prometheus_label(std::string_view v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

json::object status_object(const StreamInfo& i) {
  json::object usage{{"input_tokens", i.usage.input_tokens}, {"output_tokens", i.usage.output_tokens}};
  json::object meta{{"message_count", i.message_count},
                    {"thinking_enabled", i.thinking_enabled},
                    {"model", i.model},
                    {"events", i.events},
                    {"observers", i.observers},
                    {"usage", std::move(usage)},
                    {"queue_position", i.queue_position ? json::value(*i.queue_position) : json::value(nullptr)},
                    {"incarnation", i.incarnation}};
  json::object o{{"message_id", i.id},
                 {"status", to_string(i.status)},
                 {"created_at", rfc3339(i.created_at)},
                 {"updated_at", rfc3339(i.updated_at)},
                 {"completed_at", time_or_null(i.completed_at)},
                 {"error_message", i.error_message ? json::value(*i.error_message) : json::value(nullptr)},
                 {"stream_type", "chat_completion"},
                 {"metadata", std::move(meta)}};
  return o;
}

std::string status_json(const StreamInfo& i) { return json::serialize(status_object(i)); }

}  // namespace spool
