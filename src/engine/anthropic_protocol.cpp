#include "engine/anthropic_protocol.hpp"

#include "core/utf8.hpp"
#include "engine/openai_protocol.hpp"

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace spool {
namespace json = boost::json;

namespace {

constexpr std::int64_t kDefaultMaxTokens = 4096;
constexpr std::int64_t kThinkingBudget = 1024;  // Anthropic's minimum

const json::value* path(const json::object& o, std::string_view a, std::string_view b = {}) {
  const json::value* v = o.if_contains(a);
  if (!v || b.empty()) return v;
  return v->is_object() ? v->as_object().if_contains(b) : nullptr;
}

std::optional<std::string> string_at(const json::value* v) {
  if (v && v->is_string()) return std::string(v->as_string());
  return std::nullopt;
}

}  // namespace

json::object anthropic_request_body(const ChatRequest& req, std::string_view upstream_model) {
  json::array messages;
  for (const auto& m : req.messages) {
    json::array content;
    for (const auto& b : m.content) {
      if (!b.raw.empty()) {
        content.push_back(b.raw);
      } else {
        content.push_back(json::object{{"type", b.type}, {"text", b.text}});
      }
    }
    messages.push_back(json::object{{"role", m.role}, {"content", std::move(content)}});
  }
  const std::int64_t max_tokens = req.max_tokens > 0 ? req.max_tokens : kDefaultMaxTokens;
  json::object body{
      {"model", upstream_model}, {"messages", std::move(messages)}, {"max_tokens", max_tokens}, {"stream", true}};
  if (!req.system.empty()) body["system"] = req.system;
  put_sampling(req, SamplingSet::anthropic, body);
  if (!req.stop_sequences.empty()) {
    json::array stops;
    for (const auto& s : req.stop_sequences) stops.push_back(json::value(s));
    body["stop_sequences"] = std::move(stops);
  }
  if (req.thinking && max_tokens > kThinkingBudget) {
    body["thinking"] = json::object{{"type", "enabled"}, {"budget_tokens", kThinkingBudget}};
  }
  if (!req.tools.empty()) {
    json::array tools;
    for (const auto& t : req.tools) {
      json::object tool{{"name", t.name}};
      if (!t.description.empty()) tool["description"] = t.description;
      tool["input_schema"] = t.input_schema.is_null() ? json::value(json::object{{"type", "object"}}) : t.input_schema;
      tools.push_back(std::move(tool));
    }
    body["tools"] = std::move(tools);
    if (req.tool_choice) {
      json::object choice{{"type", req.tool_choice->type}};
      if (!req.tool_choice->name.empty()) choice["name"] = req.tool_choice->name;
      body["tool_choice"] = std::move(choice);
    }
  }
  if (auto oc = anthropic_output_config(req); !oc.empty()) body["output_config"] = std::move(oc);
  if (const auto* uid = req.metadata.if_contains("user_id"); uid && uid->is_string()) {
    body["metadata"] = json::object{{"user_id", *uid}};
  }
  return body;
}

json::object anthropic_output_config(const ChatRequest& req) {
  json::object oc = req.output_config;
  if (req.output_format && !oc.contains("format")) {  // it came as output_format or response_format
    oc["format"] = json::object{{"type", "json_schema"}, {"schema", req.output_format->schema}};
  }
  return oc;
}

void AnthropicStream::finish() {
  if (done_) return;
  if (!started_) sink_.begin(0);
  done_ = true;
  sink_.finish(stop_reason_.value_or(StopReason::end_turn), stop_sequence_);
}

bool AnthropicStream::on_event(const SseEvent& e) {
  if (done_) return false;
  const std::string_view data = e.data;
  boost::system::error_code ec;
  json::value v = json::parse(data, ec);
  if (ec || !v.is_object()) {
    fail("malformed event from upstream (not a JSON object): " + bounded_text(data, 200));
    return false;
  }
  const auto& o = v.as_object();
  std::string kind(e.event);
  if (kind.empty()) kind = string_at(o.if_contains("type")).value_or("");
  if (kind == "ping") return true;
  if (kind == "error") {
    fail("upstream error: " + upstream_error_message(data));
    return false;
  }
  if (kind == "message_start") return on_message_start(o);
  if (!started_) {
    started_ = true;
    sink_.begin(0);
  }
  if (kind == "content_block_start") return on_block_start(o);
  if (kind == "content_block_delta") return on_block_delta(o);
  if (kind == "message_delta") return on_message_delta(o);
  if (kind == "message_stop") {
    finish();
    return false;
  }
  return true;  // content_block_stop and unknown events
}

bool AnthropicStream::on_message_start(const json::object& o) {
  // Spool's usage has no cache fields: the prompt is every input token, cached or not
  // (llama-server reports a reused prompt prefix as cache_read_input_tokens).
  std::int64_t input = 0;
  if (const auto* n = path(o, "message", "usage"); n && n->is_object()) {
    for (const char* field : {"input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"}) {
      if (const auto* it = n->as_object().if_contains(field); it && it->is_number()) {
        const auto count = usage_value(*it, std::string("message.usage.") + field);
        if (!count) return false;
        input += *count;
      }
    }
  }
  started_ = true;
  sink_.begin(input);
  return true;
}

bool AnthropicStream::on_block_start(const json::object& o) {
  const auto* block = o.if_contains("content_block");
  if (block && block->is_object() && string_at(block->as_object().if_contains("type")) == "tool_use") {
    sink_.tool_use(string_at(block->as_object().if_contains("name")).value_or(""));
  }
  return true;
}

bool AnthropicStream::on_block_delta(const json::object& o) {
  const auto* d = o.if_contains("delta");
  if (!d || !d->is_object()) {
    fail("malformed content_block_delta from upstream: no delta object");
    return false;
  }
  const auto& delta = d->as_object();
  const auto dtype = string_at(delta.if_contains("type")).value_or("");
  // Each delta is checked against the limit before it is copied out of the event.
  auto piece = [&](std::string_view field, std::string_view kind) -> std::optional<std::string_view> {
    const auto* t = delta.if_contains(field);
    if (!t || !t->is_string() || t->get_string().empty()) return std::string_view{};
    if (!delta_fits(t->get_string(), kind)) return std::nullopt;
    return std::string_view(t->get_string());
  };
  std::optional<std::string_view> t = std::string_view{};  // nullopt only when a delta was refused
  if (dtype == "text_delta") {
    t = piece("text", "text");
    if (t && !t->empty()) sink_.text(*t);
  } else if (dtype == "thinking_delta") {
    t = piece("thinking", "thinking");
    if (t && !t->empty()) sink_.thinking(*t);
  } else if (dtype == "signature_delta") {
    t = piece("signature", "signature");
    if (t && !t->empty()) sink_.thinking_signature(*t);
  } else if (dtype == "input_json_delta") {
    t = piece("partial_json", "tool input");
    if (t && !t->empty()) sink_.tool_input(*t);
  }
  return t.has_value();
}

bool AnthropicStream::on_message_delta(const json::object& o) {
  if (auto r = string_at(path(o, "delta", "stop_reason"))) {
    stop_reason_ = *r == "max_tokens"      ? StopReason::max_tokens
                   : *r == "stop_sequence" ? StopReason::stop_sequence
                   : *r == "tool_use"      ? StopReason::tool_use
                                           : StopReason::end_turn;
  }
  stop_sequence_ = string_at(path(o, "delta", "stop_sequence"));
  // A matched stop sequence means stop_reason "stop_sequence" (llama-server says "end_turn").
  if (stop_sequence_) stop_reason_ = StopReason::stop_sequence;
  if (const auto* n = path(o, "usage", "output_tokens"); n && n->is_number()) {
    const auto count = usage_value(*n, "usage.output_tokens");
    if (!count) return false;
    sink_.output_tokens(*count);
  }
  return true;
}

void AnthropicStream::on_end() {
  if (done_) return;
  if (stop_reason_) {
    finish();
  } else {
    fail("upstream closed the stream before the reply finished");
  }
}

}  // namespace spool
