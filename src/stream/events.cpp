#include "stream/events.hpp"

#include "core/clock.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <fmt/format.h>

namespace spool::events {
namespace json = boost::json;

namespace {

std::string quoted(std::string_view s) { return json::serialize(json::string_view(s.data(), s.size())); }

std::string delta(int index, std::string_view block_id, std::string_view delta_type, std::string_view field,
                  std::string_view value) {
  return fmt::format(R"({{"type":"content_block_delta","index":{},"block_id":{},"delta":{{"type":"{}","{}":{}}}}})",
                     index, quoted(block_id), delta_type, field, quoted(value));
}

}  // namespace

std::string message_start(std::string_view message_id, std::string_view model, std::int64_t input_tokens) {
  json::object msg{{"id", message_id},    {"type", "message"},
                   {"role", "assistant"}, {"content", json::array{}},
                   {"model", model},      {"usage", {{"input_tokens", input_tokens}, {"output_tokens", 0}}}};
  return json::serialize(json::object{{"type", "message_start"}, {"message", std::move(msg)}});
}

std::string content_block_start(int index, std::string_view block_id, json::object block) {
  json::object b;
  b["type"] = block["type"];
  b["start_timestamp"] = now_rfc3339();
  for (auto& kv : block) {
    if (kv.key() != "type") b[kv.key()] = std::move(kv.value());
  }
  return json::serialize(json::object{
      {"type", "content_block_start"}, {"index", index}, {"block_id", block_id}, {"content_block", std::move(b)}});
}

std::string text_delta(int index, std::string_view block_id, std::string_view text) {
  return delta(index, block_id, "text_delta", "text", text);
}

std::string thinking_delta(int index, std::string_view block_id, std::string_view thinking) {
  return delta(index, block_id, "thinking_delta", "thinking", thinking);
}

std::string signature_delta(int index, std::string_view block_id, std::string_view signature) {
  return delta(index, block_id, "signature_delta", "signature", signature);
}

std::string input_json_delta(int index, std::string_view block_id, std::string_view partial_json,
                             const json::object* parsed) {
  std::string out = fmt::format(
      R"({{"type":"content_block_delta","index":{},"block_id":{},"delta":{{"type":"input_json_delta","partial_json":{})",
      index, quoted(block_id), quoted(partial_json));
  if (parsed != nullptr) {
    out += R"(,"partial_json_obj":)";
    out += json::serialize(*parsed);
  }
  out += "}}";
  return out;
}

std::string content_block_stop(int index, std::string_view block_id) {
  return fmt::format(R"({{"type":"content_block_stop","stop_timestamp":"{}","index":{},"block_id":{}}})", now_rfc3339(),
                     index, quoted(block_id));
}

std::string message_delta(std::string_view stop_reason, const std::optional<std::string>& stop_sequence, Usage usage) {
  const std::string seq = stop_sequence ? quoted(*stop_sequence) : std::string("null");
  return fmt::format(
      R"({{"type":"message_delta","delta":{{"stop_reason":"{}","stop_sequence":{}}},"usage":{{"input_tokens":{},"output_tokens":{}}}}})",
      stop_reason, seq, usage.input_tokens, usage.output_tokens);
}

std::string message_stop() { return R"({"type":"message_stop"})"; }

std::string_view ping_frame() { return "event: ping\ndata: {\"type\":\"ping\"}\n\n"; }

json::object parse_partial_object(std::string_view text) {
  // Walk the text tracking open containers and string state; remember the longest prefix that
  // ends at a value boundary, then close what is open there. Every bracket moves that boundary,
  // so the containers open at it are the ones open at the end: one stack, one pass.
  std::string stack;  // '{' or '['
  bool in_string = false, escape = false;
  std::size_t good = std::string_view::npos;  // prefix length ending at a boundary
  bool expecting_value = false;               // after ':' in an object
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        in_string = false;
        if (expecting_value || (!stack.empty() && stack.back() == '[')) {
          good = i + 1;
          expecting_value = false;
        }
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '{':
      case '[':
        if (stack.size() == kMaxInputDepth) return {};  // deeper than anything worth parsing
        stack.push_back(c);
        expecting_value = false;
        good = i + 1;
        break;
      case '}':
      case ']':
        if (!stack.empty()) stack.pop_back();
        good = i + 1;
        expecting_value = false;
        break;
      case ':':
        expecting_value = true;
        break;
      case ',':
        good = i;
        expecting_value = false;
        break;
      default:
        if ((c >= '0' && c <= '9') || c == 'e' || c == 'l' || c == 's' || c == 'u') {
          // end of a number or literal may be a boundary: try it
          if (expecting_value || (!stack.empty() && stack.back() == '[')) good = i + 1;
        }
        break;
    }
  }
  auto try_parse = [](std::string_view s) -> std::optional<json::object> {
    boost::system::error_code ec;
    json::parse_options opts;
    opts.max_depth = kMaxInputDepth + 1;  // the walk above already refused deeper text
    json::value v = json::parse(s, ec, {}, opts);
    if (!ec && v.is_object()) return std::move(v.as_object());
    return std::nullopt;
  };
  if (auto whole = try_parse(text)) return *whole;
  if (good == std::string_view::npos) return {};
  std::string s(text.substr(0, good));
  // drop trailing comma
  while (!s.empty() && (s.back() == ',' || s.back() == ' ')) s.pop_back();
  for (auto it = stack.rbegin(); it != stack.rend(); ++it) s.push_back(*it == '{' ? '}' : ']');
  if (auto partial = try_parse(s)) return *partial;
  return {};
}

}  // namespace spool::events
