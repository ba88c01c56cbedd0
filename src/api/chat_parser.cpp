#include "api/chat_parser.hpp"

#include "api/chat_schema.hpp"
#include "api/structured_output.hpp"

#include <boost/json/parser.hpp>

#include <set>

namespace spool {
namespace json = boost::json;

namespace {

// Offset of the first byte that breaks UTF-8 in `s`, or npos.
std::size_t invalid_utf8_at(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3F);
    }
    const bool overlong = (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

bool valid_tool_use_id(std::string_view id) {
  if (id.empty()) return false;
  for (unsigned char c : id) {
    if (!(std::isalnum(c) || c == '_' || c == '-')) return false;
  }
  return true;
}

// Text of a string or of an array of text blocks (system prompt, tool_result content).
std::optional<std::string> text_of(const json::value& v, const json::array& loc, Issues& is) {
  if (v.is_string()) return std::string(v.as_string());
  std::vector<const json::value*> parts;
  if (v.is_object()) {
    parts.push_back(&v);
  } else if (v.is_array()) {
    for (const auto& p : v.as_array()) parts.push_back(&p);
  } else {
    is.add("string_type", loc, "Input should be a valid string or a list of text blocks");
    return std::nullopt;
  }
  std::string out;
  bool first = true;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const json::value& p = *parts[i];
    const json::array ploc = v.is_array() ? at(loc, json::value(i)) : loc;
    if (p.is_string()) {
      if (!first) out.push_back('\n');
      out += p.as_string();
      first = false;
      continue;
    }
    if (!p.is_object()) {
      is.add("dict_type", ploc, "Input should be a valid dictionary");
      continue;
    }
    const auto& o = p.as_object();
    auto type = get_string(o, "type", ploc, is, true);
    if (!type) continue;
    if (*type != "text") continue;  // images and the like carry no text
    auto text = get_string(o, "text", ploc, is, true);
    if (!text) continue;
    if (!first) out.push_back('\n');
    out += *text;
    first = false;
  }
  return out;
}

// Checks a block's `source` (image, document): an object with a type, for images base64 or url.
void parse_source(const json::object& o, const json::array& loc, std::string_view block_type, Issues& is) {
  const json::value* src = field(o, "source");
  if (!src) {
    is.add("missing", at(loc, "source"), "Field required");
    return;
  }
  if (!src->is_object()) {
    is.add("dict_type", at(loc, "source"), "Input should be a valid dictionary");
    return;
  }
  const json::array sloc = at(loc, "source");
  auto st = get_string(src->as_object(), "type", sloc, is, true);
  if (st && block_type == "image" && *st != "base64" && *st != "url") {
    is.add("literal_error", at(sloc, "type"), "Input should be 'base64' or 'url'");
  }
}

// Reads a tool_use block's id (of the pattern tool ids follow), name and input object into `b`.
void parse_tool_use(const json::object& o, const json::array& loc, ContentBlock& b, Issues& is) {
  if (auto id = get_string(o, "id", loc, is, true)) {
    if (!valid_tool_use_id(*id)) {
      is.add("string_pattern_mismatch", at(loc, "id"), "String should match pattern '^[a-zA-Z0-9_-]+$'");
    }
    b.id = *id;
  }
  if (auto n = get_string(o, "name", loc, is, true)) b.name = *n;
  const json::value* input = field(o, "input");
  if (!input) {
    is.add("missing", at(loc, "input"), "Field required");
  } else if (!input->is_object()) {
    is.add("dict_type", at(loc, "input"), "Input should be a valid dictionary");
  }
}

// Reads the fields a block of type `b.type` has into `b`; false when §2 knows no such type.
bool parse_block_fields(const json::object& o, const json::array& loc, ContentBlock& b, Issues& is) {
  if (b.type == "text") {
    if (auto t = get_string(o, "text", loc, is, true)) b.text = *t;
  } else if (b.type == "thinking") {
    if (auto t = get_string(o, "thinking", loc, is, true)) b.text = *t;
  } else if (b.type == "redacted_thinking") {
    get_string(o, "data", loc, is, false);
  } else if (b.type == "image" || b.type == "document") {
    parse_source(o, loc, b.type, is);
  } else if (b.type == "tool_use") {
    parse_tool_use(o, loc, b, is);
  } else if (b.type == "tool_result") {
    if (auto id = get_string(o, "tool_use_id", loc, is, true)) b.id = *id;
    if (const json::value* c = field(o, "content")) {
      if (auto t = text_of(*c, at(loc, "content"), is)) b.text = *t;
    }
    get_bool(o, "is_error", loc, is);
  } else {
    return false;
  }
  return true;
}

// Appends the content block `v` to `msg`.
void parse_block(const json::value& v, const json::array& loc, ChatMessage& msg, Issues& is) {
  if (!v.is_object()) {
    is.add("dict_type", loc, "Input should be a valid dictionary");
    return;
  }
  const auto& o = v.as_object();
  auto type = get_string(o, "type", loc, is, true);
  if (!type) return;
  ContentBlock b;
  b.type = *type;
  b.raw = o;
  if (!parse_block_fields(o, loc, b, is)) {
    is.add("union_tag_invalid", at(loc, "type"),
           "Input tag '" + *type +
               "' does not match any of the expected tags: 'text', 'image', 'document', 'thinking', "
               "'redacted_thinking', 'tool_use', 'tool_result'");
    return;
  }
  msg.content.push_back(std::move(b));
}

// The body as a JSON object, or nullopt with the issue saying why it is not one (bad UTF-8,
// bad JSON, another type).
std::optional<json::object> parse_json(std::string_view body, Issues& is) {
  if (const std::size_t bad = invalid_utf8_at(body); bad != std::string_view::npos) {
    json::array loc{"body"};
    loc.push_back(static_cast<std::int64_t>(bad));
    is.add("json_invalid", loc, "JSON decode error: the body is not valid UTF-8");
    return std::nullopt;
  }
  boost::system::error_code ec;
  json::parse_options popts;
  popts.max_depth = 64;
  json::parser p({}, popts);
  const std::size_t consumed = p.write(body.data(), body.size(), ec);
  if (ec) {
    json::array loc{"body"};
    loc.push_back(static_cast<std::int64_t>(consumed));
    is.add("json_invalid", loc, "JSON decode error: " + ec.message());
    return std::nullopt;
  }
  json::value root = p.release();
  if (!root.is_object()) {
    is.add("model_attributes_type", json::array{"body"},
           "Input should be a valid dictionary or object to extract fields from");
    return std::nullopt;
  }
  return std::move(root.as_object());
}

// model, max_tokens and stream.
void parse_top_level(const json::object& o, const json::array& loc, ChatRequest& req, Issues& is) {
  if (auto m = get_string(o, "model", loc, is, false)) req.model = *m;
  if (auto mt = get_int(o, "max_tokens", loc, is)) req.max_tokens = *mt;
  if (auto s = get_bool(o, "stream", loc, is)) req.stream = *s;
}

// A number that must lie in [0, 1] (temperature, top_p).
std::optional<double> get_unit_interval(const json::object& o, std::string_view key, const json::array& loc,
                                        Issues& is) {
  auto t = get_number(o, key, loc, is);
  if (t && (*t < 0 || *t > 1)) {
    is.add(*t < 0 ? "greater_than_equal" : "less_than_equal", at(loc, json::value(key)),
           *t < 0 ? "Input should be greater than or equal to 0" : "Input should be less than or equal to 1");
  }
  return t;
}

// stop_sequences: a list of strings.
void parse_stop_sequences(const json::object& o, const json::array& loc, ChatRequest& req, Issues& is) {
  const json::value* ss = field(o, "stop_sequences");
  if (!ss) return;
  const json::array sloc = at(loc, "stop_sequences");
  if (!ss->is_array()) {
    is.add("list_type", sloc, "Input should be a valid list");
    return;
  }
  std::size_t i = 0;
  for (const auto& s : ss->as_array()) {
    if (!s.is_string()) {
      is.add("string_type", at(sloc, i), "Input should be a valid string");
    } else {
      req.stop_sequences.emplace_back(s.as_string());
    }
    ++i;
  }
}

// The sampling parameters. Negative optional ones (min_p, penalties, seed) are ignored, not refused.
void parse_sampling(const json::object& o, const json::array& loc, ChatRequest& req, Issues& is) {
  req.temperature = get_unit_interval(o, "temperature", loc, is);
  req.top_p = get_unit_interval(o, "top_p", loc, is);
  if (auto k = get_int(o, "top_k", loc, is)) {
    if (*k < 0) is.add("greater_than_equal", at(loc, "top_k"), "Input should be greater than or equal to 0");
    req.top_k = k;
  }
  auto non_negative = [](std::optional<double> v) { return v && *v >= 0 ? v : std::nullopt; };
  req.min_p = non_negative(get_number(o, "min_p", loc, is));
  req.repetition_penalty = non_negative(get_number(o, "repetition_penalty", loc, is));
  req.presence_penalty = non_negative(get_number(o, "presence_penalty", loc, is));
  req.frequency_penalty = non_negative(get_number(o, "frequency_penalty", loc, is));
  if (auto s = get_number(o, "seed", loc, is); s && *s >= 0) req.seed = static_cast<std::int64_t>(*s);
  parse_stop_sequences(o, loc, req, is);
}

// system: a string or a list of text blocks.
void parse_system(const json::object& o, const json::array& loc, ChatRequest& req, Issues& is) {
  if (const json::value* sys = field(o, "system")) {
    if (auto t = text_of(*sys, at(loc, "system"), is)) req.system = *t;
  }
}

// thinking: {enabled: bool} or Anthropic's {type: "enabled"|"disabled", budget_tokens}.
void parse_thinking(const json::object& o, const json::array& loc, ChatRequest& req, Issues& is) {
  const json::value* th = field(o, "thinking");
  if (!th) return;
  const json::array tloc = at(loc, "thinking");
  if (!th->is_object()) {
    is.add("dict_type", tloc, "Input should be a valid dictionary");
    return;
  }
  const auto& to = th->as_object();
  if (auto en = get_bool(to, "enabled", tloc, is)) req.thinking = *en;
  if (auto ty = get_string(to, "type", tloc, is, false)) {
    if (*ty == "enabled") {
      req.thinking = true;
    } else if (*ty != "disabled") {
      is.add("literal_error", at(tloc, "type"), "Input should be 'enabled' or 'disabled'");
    }
  }
  get_int(to, "budget_tokens", tloc, is);
}

// metadata: an object, kept as sent; its user_id at most 512 characters.
void parse_metadata(const json::object& o, const json::array& loc, ChatRequest& req, Issues& is) {
  const json::value* md = field(o, "metadata");
  if (!md) return;
  const json::array mloc = at(loc, "metadata");
  if (!md->is_object()) {
    is.add("dict_type", mloc, "Input should be a valid dictionary");
    return;
  }
  req.metadata = md->as_object();
  if (auto uid = get_string(req.metadata, "user_id", mloc, is, false); uid && uid->size() > 512) {
    is.add("string_too_long", at(mloc, "user_id"), "String should have at most 512 characters");
  }
}

// The names tools declare, for the rules on tool_choice.
struct ToolNames {
  std::set<std::string> names;
  bool duplicate = false;  // a name was declared twice
};

// Appends the tool `t` to req.tools and its name to `names`.
void parse_tool(const json::value& t, const json::array& loc, ChatRequest& req, ToolNames& names, Issues& is) {
  if (!t.is_object()) {
    is.add("dict_type", loc, "Input should be a valid dictionary");
    return;
  }
  const auto& to = t.as_object();
  ToolSpec spec;
  if (auto n = get_string(to, "name", loc, is, true)) {
    spec.name = *n;
    if (!names.names.insert(*n).second) names.duplicate = true;
  }
  if (auto d = get_string(to, "description", loc, is, false)) spec.description = *d;
  if (const json::value* sch = field(to, "input_schema")) {
    if (!sch->is_object()) is.add("dict_type", at(loc, "input_schema"), "Input should be a valid dictionary");
    spec.input_schema = *sch;
  }
  req.tools.push_back(std::move(spec));
}

// tools: a list of {name, description, input_schema}.
ToolNames parse_tools(const json::object& o, const json::array& loc, ChatRequest& req, Issues& is) {
  ToolNames names;
  const json::value* tools = field(o, "tools");
  if (!tools) return names;
  const json::array tloc = at(loc, "tools");
  if (!tools->is_array()) {
    is.add("list_type", tloc, "Input should be a valid list");
    return names;
  }
  std::size_t i = 0;
  for (const auto& t : tools->as_array()) parse_tool(t, at(tloc, i++), req, names, is);
  return names;
}

// tool_choice: {type: auto|any|tool|none, name}.
void parse_tool_choice(const json::object& o, const json::array& loc, ChatRequest& req, Issues& is) {
  const json::value* tc = field(o, "tool_choice");
  if (!tc) return;
  const json::array cloc = at(loc, "tool_choice");
  if (!tc->is_object()) {
    is.add("dict_type", cloc, "Input should be a valid dictionary");
    return;
  }
  ToolChoice choice;
  if (auto ty = get_string(tc->as_object(), "type", cloc, is, true)) {
    if (*ty != "auto" && *ty != "any" && *ty != "tool" && *ty != "none") {
      is.add("literal_error", at(cloc, "type"), "Input should be 'auto', 'any', 'tool' or 'none'");
    }
    choice.type = *ty;
  }
  if (auto n = get_string(tc->as_object(), "name", cloc, is, false)) choice.name = *n;
  req.tool_choice = std::move(choice);
}

// A message's role into msg.role; false when it is missing or not user, assistant or system.
bool parse_role(const json::object& mo, const json::array& loc, ChatMessage& msg, Issues& is) {
  auto role = get_string(mo, "role", loc, is, true);
  if (!role) return false;
  if (*role != "user" && *role != "assistant" && *role != "system") {
    is.add("literal_error", at(loc, "role"), "Input should be 'user', 'assistant' or 'system'");
    return false;
  }
  msg.role = *role;
  return true;
}

// A message's content (at `loc`) into msg.content: a string is one text block, a list holds
// content blocks. False when it is missing or neither.
bool parse_content(const json::value* content, const json::array& loc, ChatMessage& msg, Issues& is) {
  if (!content) {
    is.add("missing", loc, "Field required");
    return false;
  }
  if (content->is_string()) {
    ContentBlock b;
    b.type = "text";
    b.text = std::string(content->as_string());
    msg.content.push_back(std::move(b));
  } else if (content->is_array()) {
    std::size_t j = 0;
    for (const auto& blk : content->as_array()) parse_block(blk, at(loc, j++), msg, is);
  } else {
    is.add("string_type", loc, "Input should be a valid string or a list of content blocks");
    return false;
  }
  return true;
}

// Appends the message `m` to req.messages.
void parse_message(const json::value& m, const json::array& loc, ChatRequest& req, Issues& is) {
  if (!m.is_object()) {
    is.add("dict_type", loc, "Input should be a valid dictionary");
    return;
  }
  const auto& mo = m.as_object();
  ChatMessage msg;
  const bool role_ok = parse_role(mo, loc, msg, is);
  if (!parse_content(field(mo, "content"), at(loc, "content"), msg, is)) return;
  if (role_ok) req.messages.push_back(std::move(msg));
}

// messages: a list of {role, content}; the list as sent (the rules look at it), or nullptr
// when it is missing or not a list.
const json::array* parse_messages(const json::object& o, const json::array& loc, ChatRequest& req, Issues& is) {
  const json::value* msgs = field(o, "messages");
  const json::array mloc = at(loc, "messages");
  if (!msgs) {
    is.add("missing", mloc, "Field required");
    return nullptr;
  }
  if (!msgs->is_array()) {
    is.add("list_type", mloc, "Input should be a valid list");
    return nullptr;
  }
  std::size_t i = 0;
  for (const auto& m : msgs->as_array()) parse_message(m, at(mloc, i++), req, is);
  return &msgs->as_array();
}

// A rule's failure: a 400 with an explanation.
Error rule(std::string text) { return make_error(Errc::invalid_request, std::move(text)); }

// Rule: there are messages, and no message's content is empty.
Status check_contents(const json::array& raw_msgs) {
  if (raw_msgs.empty()) return rule("messages must not be empty");
  for (std::size_t i = 0; i < raw_msgs.size(); ++i) {
    const json::value& c = raw_msgs[i].as_object().at("content");
    if ((c.is_string() && c.as_string().empty()) || (c.is_array() && c.as_array().empty())) {
      return rule("messages." + std::to_string(i) + ".content must not be empty");
    }
  }
  return Ok{};
}

// Rule: tool names are unique, and a tool_choice of type tool names one of them.
Status check_tools(const ChatRequest& req, const ToolNames& tools) {
  if (tools.duplicate) return rule("tool names must be unique");
  if (req.tool_choice && req.tool_choice->type == "tool") {
    if (req.tool_choice->name.empty()) return rule("tool_choice of type 'tool' needs a name");
    if (!tools.names.contains(req.tool_choice->name)) {
      return rule("tool_choice names tool '" + req.tool_choice->name + "', which is not among tools");
    }
  }
  return Ok{};
}

// Moves system messages into req.system (after the system field, one per line); the rule that
// the conversation left ends with a user or assistant message.
Status move_system_messages(ChatRequest& req) {
  const auto last_rule = [] { return rule("the last message must be from the user or the assistant"); };
  if (req.messages.back().role == "system") return last_rule();
  std::vector<ChatMessage> conv;
  for (auto& m : req.messages) {
    if (m.role == "system") {
      const std::string t = message_text(m);
      if (!req.system.empty() && !t.empty()) req.system.push_back('\n');
      req.system += t;
    } else {
      conv.push_back(std::move(m));
    }
  }
  req.messages = std::move(conv);
  req.message_count = static_cast<int>(req.messages.size());
  if (req.messages.empty()) return last_rule();
  return Ok{};
}

// Rule: tool_use blocks only in assistant messages, with unique ids, each answered by a later
// tool_result (a trailing assistant message's too: SPEC §2), and no tool_result without one.
Status check_tool_ids(const ChatRequest& req) {
  std::set<std::string> tool_use_ids, tool_result_ids;
  for (const auto& m : req.messages) {
    for (const auto& b : m.content) {
      if (b.type == "tool_use") {
        if (m.role != "assistant") return rule("tool_use blocks are only allowed in assistant messages");
        if (!tool_use_ids.insert(b.id).second) return rule("duplicate tool_use id '" + b.id + "'");
      } else if (b.type == "tool_result") {
        if (!tool_use_ids.contains(b.id))
          return rule("tool_result '" + b.id + "' has no earlier tool_use with that id");
        tool_result_ids.insert(b.id);
      }
    }
  }
  for (const auto& id : tool_use_ids) {
    if (!tool_result_ids.contains(id)) return rule("tool_use '" + id + "' has no tool_result answering it");
  }
  return Ok{};
}

// The conversation rules of §2 on a request that passed the schema, in the order they are reported.
Status check_rules(ChatRequest& req, const json::array& raw_msgs, const ToolNames& tools) {
  if (auto st = check_contents(raw_msgs); !st) return st;
  if (auto st = check_tools(req, tools); !st) return st;
  if (auto st = move_system_messages(req); !st) return st;
  return check_tool_ids(req);
}

}  // namespace

Result<ChatRequest> parse_chat_request(std::string_view body) {
  Issues is;
  const std::optional<json::object> root = parse_json(body, is);
  if (!root) return is.error();
  const json::object& o = *root;
  const json::array loc{"body"};
  ChatRequest req;
  parse_top_level(o, loc, req, is);
  parse_sampling(o, loc, req, is);
  parse_system(o, loc, req, is);
  parse_thinking(o, loc, req, is);
  parse_metadata(o, loc, req, is);
  const ToolNames tools = parse_tools(o, loc, req, is);
  parse_tool_choice(o, loc, req, is);
  parse_structured_output(o, loc, req, is);
  const json::array* raw_msgs = parse_messages(o, loc, req, is);
  if (!is.empty()) return is.error();
  if (auto ok = check_rules(req, *raw_msgs, tools); !ok) return ok.error();
  return req;
}

}  // namespace spool
