#include "engine/openai_protocol.hpp"

#include "core/utf8.hpp"

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <fmt/format.h>

namespace spool {
namespace json = boost::json;

namespace {

// Largest tool call index taken from an upstream (a reply calls a handful of tools).
constexpr std::int64_t kMaxToolIndex = 1'000'000;

json::value image_part(const ContentBlock& b) {
  const auto* src = b.raw.if_contains("source");
  if (!src || !src->is_object()) return nullptr;
  const auto& s = src->as_object();
  std::string url;
  if (const auto* t = s.if_contains("type"); t && t->is_string() && t->as_string() == "url") {
    if (const auto* u = s.if_contains("url"); u && u->is_string()) url = u->as_string();
  } else {
    std::string media = "image/png";
    if (const auto* m = s.if_contains("media_type"); m && m->is_string()) media = m->as_string();
    if (const auto* d = s.if_contains("data"); d && d->is_string())
      url = "data:" + media + ";base64," + std::string(d->as_string());
  }
  return json::object{{"type", "image_url"}, {"image_url", {{"url", url}}}};
}

}  // namespace

json::object openai_request_body(const ChatRequest& req, std::string_view upstream_model) {
  json::array messages;
  if (!req.system.empty()) messages.push_back(json::object{{"role", "system"}, {"content", req.system}});
  for (const auto& m : req.messages) {
    std::string text;
    json::array parts;
    bool has_image = false;
    json::array tool_calls;
    for (const auto& b : m.content) {
      if (b.type == "text") {
        text += b.text;
        parts.push_back(json::object{{"type", "text"}, {"text", b.text}});
      } else if (b.type == "image") {
        json::value p = image_part(b);
        if (!p.is_null()) {
          parts.push_back(std::move(p));
          has_image = true;
        }
      } else if (b.type == "tool_use") {
        const json::value* input = b.raw.if_contains("input");
        tool_calls.push_back(json::object{
            {"id", b.id},
            {"type", "function"},
            {"function", {{"name", b.name}, {"arguments", input ? json::serialize(*input) : std::string("{}")}}}});
      } else if (b.type == "tool_result") {
        messages.push_back(json::object{{"role", "tool"}, {"tool_call_id", b.id}, {"content", b.text}});
      }
    }
    if (m.role == "assistant") {
      json::object a{{"role", "assistant"}, {"content", text.empty() ? json::value(nullptr) : json::value(text)}};
      if (!tool_calls.empty()) a["tool_calls"] = std::move(tool_calls);
      messages.push_back(std::move(a));
    } else if (has_image) {
      messages.push_back(json::object{{"role", "user"}, {"content", std::move(parts)}});
    } else if (!text.empty()) {
      messages.push_back(json::object{{"role", "user"}, {"content", text}});
    }
  }
  json::object body{{"model", upstream_model},
                    {"messages", std::move(messages)},
                    {"stream", true},
                    {"stream_options", {{"include_usage", true}}}};
  if (req.max_tokens > 0) body["max_tokens"] = req.max_tokens;
  put_sampling(req, SamplingSet::openai, body);
  if (!req.tools.empty()) {
    json::array tools;
    for (const auto& t : req.tools) {
      json::object fn{{"name", t.name}};
      if (!t.description.empty()) fn["description"] = t.description;
      fn["parameters"] = t.input_schema.is_null() ? json::value(json::object{{"type", "object"}}) : t.input_schema;
      tools.push_back(json::object{{"type", "function"}, {"function", std::move(fn)}});
    }
    body["tools"] = std::move(tools);
    if (req.tool_choice) {
      const auto& c = *req.tool_choice;
      if (c.type == "any") {
        body["tool_choice"] = "required";
      } else if (c.type == "tool") {
        body["tool_choice"] = json::object{{"type", "function"}, {"function", {{"name", c.name}}}};
      } else {
        body["tool_choice"] = c.type;  // auto, none
      }
    }
  }
  if (req.output_format) body["response_format"] = openai_response_format(*req.output_format);
  return body;
}

json::object openai_response_format(const OutputFormat& format) {
  if (format.kind == OutputFormat::Kind::json_object) return json::object{{"type", "json_object"}};
  json::object schema{{"name", format.name.empty() ? std::string("response") : format.name}, {"schema", format.schema}};
  if (format.strict) schema["strict"] = *format.strict;
  return json::object{{"type", "json_schema"}, {"json_schema", std::move(schema)}};
}

namespace {

// Longest explanation taken from an upstream's error body.
constexpr std::size_t kMaxUpstreamExplanation = 1000;

// The text of an error's explanation: a string, or the first {"loc","msg"} of a §5/FastAPI list.
std::string explanation_text(const json::value& x) {
  if (x.is_string()) return std::string(x.get_string());
  if (!x.is_array() || x.get_array().empty() || !x.get_array()[0].is_object()) return {};
  const auto& first = x.get_array()[0].get_object();
  std::string where;
  if (const auto* loc = first.if_contains("loc"); loc && loc->is_array()) {
    for (const auto& p : loc->get_array()) {
      if (!where.empty()) where += '.';
      where += p.is_string() ? std::string(p.get_string()) : json::serialize(p);
    }
  }
  const auto* msg = first.if_contains("msg");
  std::string out = where;
  if (msg && msg->is_string()) out += (out.empty() ? "" : ": ") + std::string(msg->get_string());
  if (!out.empty() && x.get_array().size() > 1) out += " (and more)";
  return out;
}

}  // namespace

std::string upstream_error_message(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (!ec && v.is_object()) {
    const auto& o = v.as_object();
    std::string message;
    const json::value* explanation = nullptr;  // what the upstream says besides its title
    if (const auto* e = o.if_contains("error")) {
      if (e->is_object()) {
        const auto& eo = e->get_object();
        if (const auto* m = eo.if_contains("message"); m && m->is_string()) message = m->get_string();
        if (const auto* d = eo.if_contains("detail"); d && d->is_object()) {
          explanation = d->get_object().if_contains("explanation");  // a §5 body (another Spool)
        } else if (d) {
          explanation = d;
        }
      } else if (e->is_string()) {
        message = e->get_string();
      }
    }
    if (message.empty()) {
      if (const auto* m = o.if_contains("message"); m && m->is_string()) message = m->get_string();
    }
    if (explanation == nullptr) explanation = o.if_contains("detail");  // FastAPI's {"detail": ...}
    const std::string why = explanation ? explanation_text(*explanation) : std::string();
    if (!why.empty() && message.find(why) == std::string::npos) message += (message.empty() ? "" : ": ") + why;
    if (!message.empty()) return bounded_text(message, kMaxUpstreamExplanation);
  }
  std::string s = bounded_text(body, 500);
  return s.empty() ? "(empty body)" : s;
}

OpenAiStream::OpenAiStream(EngineSink& sink, std::vector<std::string> stop_sequences)
    : UpstreamReply(sink), splitter_(std::move(stop_sequences)) {}

void OpenAiStream::start() {
  if (started_) return;
  started_ = true;
  sink_.begin(prompt_tokens_);
}

void OpenAiStream::finish() {
  if (done_) return;
  start();
  send_deltas(sink_, splitter_.finish());
  if (prompt_tokens_ > 0) sink_.begin(prompt_tokens_);  // the real count arrives with the last chunk
  if (completion_tokens_ > 0) sink_.output_tokens(completion_tokens_);
  done_ = true;
  if (splitter_.stopped()) {
    sink_.finish(StopReason::stop_sequence, splitter_.stopped());
  } else {
    sink_.finish(finish_reason_.value_or(StopReason::end_turn), std::nullopt);
  }
}

bool OpenAiStream::on_data(std::string_view data) {
  if (done_) return false;
  if (data == "[DONE]") {
    finish();
    return false;
  }
  boost::system::error_code ec;
  json::value v = json::parse(data, ec);
  if (ec || !v.is_object()) {
    fail("malformed chunk from upstream (not a JSON object): " + bounded_text(data, 200));
    return false;
  }
  ++chunks_;
  const auto& o = v.as_object();
  if (const auto* err = o.if_contains("error")) {
    fail("upstream error: " + upstream_error_message(json::serialize(json::object{{"error", *err}})));
    return false;
  }
  if (const auto* u = o.if_contains("usage"); u && u->is_object() && !on_usage(u->as_object())) return false;
  start();
  const auto* choices = o.if_contains("choices");
  if (!choices || !choices->is_array() || choices->as_array().empty()) return true;  // e.g. the usage chunk
  const auto& ch = choices->as_array()[0];
  if (!ch.is_object()) {
    fail("malformed chunk from upstream: choices[0] is not an object");
    return false;
  }
  const auto& c = ch.as_object();
  if (const auto* d = c.if_contains("delta"); d && d->is_object() && !on_delta(d->as_object())) return false;
  if (const auto* fr = c.if_contains("finish_reason"); fr && fr->is_string()) {
    const std::string_view r = fr->as_string();
    finish_reason_ = r == "length"                                 ? StopReason::max_tokens
                     : (r == "tool_calls" || r == "function_call") ? StopReason::tool_use
                                                                   : StopReason::end_turn;
  }
  return true;
}

bool OpenAiStream::on_usage(const json::object& usage) {
  if (const auto* p = usage.if_contains("prompt_tokens"); p && p->is_number()) {
    const auto n = usage_value(*p, "usage.prompt_tokens");
    if (!n) return false;
    prompt_tokens_ = *n;
  }
  if (const auto* c = usage.if_contains("completion_tokens"); c && c->is_number()) {
    const auto n = usage_value(*c, "usage.completion_tokens");
    if (!n) return false;
    completion_tokens_ = *n;
  }
  return true;
}

bool OpenAiStream::on_delta(const json::object& delta) {
  for (const char* key : {"reasoning_content", "reasoning"}) {
    if (const auto* r = delta.if_contains(key); r && r->is_string() && !r->as_string().empty()) {
      if (!delta_fits(r->as_string(), "thinking")) return false;
      sink_.thinking(r->as_string());
    }
  }
  if (const auto* t = delta.if_contains("content"); t && t->is_string() && !t->as_string().empty()) {
    if (!delta_fits(t->as_string(), "text")) return false;
    send_deltas(sink_, splitter_.feed(t->as_string()));
    if (splitter_.stopped()) {
      finish();
      return false;
    }
  }
  if (const auto* calls = delta.if_contains("tool_calls"); calls && calls->is_array()) {
    for (const auto& call : calls->as_array()) {
      if (call.is_object() && !on_tool_call(call.as_object())) return false;
    }
  }
  return true;
}

bool OpenAiStream::on_tool_call(const json::object& call) {
  std::int64_t index = 0;
  if (const auto* i = call.if_contains("index"); i && i->is_number()) {
    const auto n = whole_number(*i, kMaxToolIndex);
    if (!n) {
      fail(fmt::format("upstream sent an invalid tool call index: {} (expected a whole number from 0 to {})",
                       json::serialize(*i).substr(0, 64), kMaxToolIndex));
      return false;
    }
    index = *n;
  }
  const auto* fn = call.if_contains("function");
  const json::object* f = fn && fn->is_object() ? &fn->as_object() : nullptr;
  if (index != tool_index_) {
    std::string name;
    if (f) {
      if (const auto* n = f->if_contains("name"); n && n->is_string()) name = n->as_string();
    }
    sink_.tool_use(name);
    tool_index_ = index;
  }
  if (f) {
    if (const auto* a = f->if_contains("arguments"); a && a->is_string() && !a->as_string().empty()) {
      if (!delta_fits(a->as_string(), "tool input")) return false;
      sink_.tool_input(a->as_string());
    }
  }
  return true;
}

void OpenAiStream::on_end() {
  if (done_) return;
  if (finish_reason_) {
    finish();
  } else {
    fail(chunks_ == 0 ? "upstream ended the stream without sending anything"
                      : "upstream closed the stream before the reply finished");
  }
}

}  // namespace spool
