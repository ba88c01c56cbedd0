#include "api/chat_parser.hpp"

#include <boost/json/array.hpp>
#include <boost/json/parser.hpp>
#include <boost/json/serialize.hpp>

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <set>

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

// Collects schema errors in the pydantic-like shape of §5: the first kMaxIssues, then a count.
class Issues {
 public:
  static constexpr std::size_t kMaxIssues = 50;

  void add(std::string_view type, const json::array& loc, std::string_view msg) {
    if (list_.size() >= kMaxIssues) {
      ++more_;  // past the cap an issue costs a count, not an entry
      return;
    }
    list_.push_back(json::object{{"type", type}, {"loc", loc}, {"msg", msg}});
  }
  bool empty() const { return list_.empty(); }
  // The error, with an entry "and N more" when more than kMaxIssues were found; consumes the list.
  Error error() {
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

 private:
  json::array list_;
  std::size_t more_ = 0;  // issues found past the cap
};

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
  if (b.type == "text") {
    if (auto t = get_string(o, "text", loc, is, true)) b.text = *t;
  } else if (b.type == "thinking") {
    if (auto t = get_string(o, "thinking", loc, is, true)) b.text = *t;
  } else if (b.type == "redacted_thinking") {
    get_string(o, "data", loc, is, false);
  } else if (b.type == "image" || b.type == "document") {
    const json::value* src = field(o, "source");
    if (!src) {
      is.add("missing", at(loc, "source"), "Field required");
    } else if (!src->is_object()) {
      is.add("dict_type", at(loc, "source"), "Input should be a valid dictionary");
    } else {
      const json::array sloc = at(loc, "source");
      auto st = get_string(src->as_object(), "type", sloc, is, true);
      if (st && b.type == "image" && *st != "base64" && *st != "url") {
        is.add("literal_error", at(sloc, "type"), "Input should be 'base64' or 'url'");
      }
    }
  } else if (b.type == "tool_use") {
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
  } else if (b.type == "tool_result") {
    if (auto id = get_string(o, "tool_use_id", loc, is, true)) b.id = *id;
    if (const json::value* c = field(o, "content")) {
      if (auto t = text_of(*c, at(loc, "content"), is)) b.text = *t;
    }
    get_bool(o, "is_error", loc, is);
  } else {
    is.add("union_tag_invalid", at(loc, "type"),
           "Input tag '" + *type +
               "' does not match any of the expected tags: 'text', 'image', 'document', 'thinking', "
               "'redacted_thinking', 'tool_use', 'tool_result'");
    return;
  }
  msg.content.push_back(std::move(b));
}

}  // namespace

Result<ChatRequest> parse_chat_request(std::string_view body) {
  Issues is;
  boost::system::error_code ec;
  json::parse_options popts;
  popts.max_depth = 64;
  json::parser p({}, popts);
  if (const std::size_t bad = invalid_utf8_at(body); bad != std::string_view::npos) {
    json::array loc{"body"};
    loc.push_back(static_cast<std::int64_t>(bad));
    is.add("json_invalid", loc, "JSON decode error: the body is not valid UTF-8");
    return is.error();
  }
  const std::size_t consumed = p.write(body.data(), body.size(), ec);
  if (ec) {
    json::array loc{"body"};
    loc.push_back(static_cast<std::int64_t>(consumed));
    is.add("json_invalid", loc, "JSON decode error: " + ec.message());
    return is.error();
  }
  json::value root = p.release();
  const json::array body_loc{"body"};
  if (!root.is_object()) {
    is.add("model_attributes_type", body_loc, "Input should be a valid dictionary or object to extract fields from");
    return is.error();
  }
  const auto& o = root.as_object();
  ChatRequest req;

  if (auto m = get_string(o, "model", body_loc, is, false)) req.model = *m;
  if (auto mt = get_int(o, "max_tokens", body_loc, is)) req.max_tokens = *mt;
  if (auto s = get_bool(o, "stream", body_loc, is)) req.stream = *s;

  if (auto t = get_number(o, "temperature", body_loc, is)) {
    if (*t < 0 || *t > 1) {
      is.add(*t < 0 ? "greater_than_equal" : "less_than_equal", at(body_loc, "temperature"),
             *t < 0 ? "Input should be greater than or equal to 0" : "Input should be less than or equal to 1");
    }
    req.temperature = t;
  }
  if (auto t = get_number(o, "top_p", body_loc, is)) {
    if (*t < 0 || *t > 1) {
      is.add(*t < 0 ? "greater_than_equal" : "less_than_equal", at(body_loc, "top_p"),
             *t < 0 ? "Input should be greater than or equal to 0" : "Input should be less than or equal to 1");
    }
    req.top_p = t;
  }
  if (auto k = get_int(o, "top_k", body_loc, is)) {
    if (*k < 0) is.add("greater_than_equal", at(body_loc, "top_k"), "Input should be greater than or equal to 0");
    req.top_k = k;
  }
  auto non_negative = [](std::optional<double> v) { return v && *v >= 0 ? v : std::nullopt; };
  req.min_p = non_negative(get_number(o, "min_p", body_loc, is));
  req.repetition_penalty = non_negative(get_number(o, "repetition_penalty", body_loc, is));
  req.presence_penalty = non_negative(get_number(o, "presence_penalty", body_loc, is));
  req.frequency_penalty = non_negative(get_number(o, "frequency_penalty", body_loc, is));
  if (auto s = get_number(o, "seed", body_loc, is); s && *s >= 0) req.seed = static_cast<std::int64_t>(*s);

  if (const json::value* ss = field(o, "stop_sequences")) {
    if (!ss->is_array()) {
      is.add("list_type", at(body_loc, "stop_sequences"), "Input should be a valid list");
    } else {
      std::size_t i = 0;
      for (const auto& s : ss->as_array()) {
        if (!s.is_string()) {
          is.add("string_type", at(at(body_loc, "stop_sequences"), i), "Input should be a valid string");
        } else {
          req.stop_sequences.emplace_back(s.as_string());
        }
        ++i;
      }
    }
  }

  if (const json::value* sys = field(o, "system")) {
    if (auto t = text_of(*sys, at(body_loc, "system"), is)) req.system = *t;
  }

  // thinking: {enabled: bool} or Anthropic's {type: "enabled"|"disabled", budget_tokens}
  if (const json::value* th = field(o, "thinking")) {
    const json::array tloc = at(body_loc, "thinking");
    if (!th->is_object()) {
      is.add("dict_type", tloc, "Input should be a valid dictionary");
    } else {
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
  }

  if (const json::value* md = field(o, "metadata")) {
    if (!md->is_object()) {
      is.add("dict_type", at(body_loc, "metadata"), "Input should be a valid dictionary");
    } else {
      req.metadata = md->as_object();
      if (auto uid = get_string(req.metadata, "user_id", at(body_loc, "metadata"), is, false);
          uid && uid->size() > 512) {
        is.add("string_too_long", at(at(body_loc, "metadata"), "user_id"), "String should have at most 512 characters");
      }
    }
  }

  // tools
  std::set<std::string> tool_names;
  bool duplicate_tool = false;
  if (const json::value* tools = field(o, "tools")) {
    const json::array tloc = at(body_loc, "tools");
    if (!tools->is_array()) {
      is.add("list_type", tloc, "Input should be a valid list");
    } else {
      std::size_t i = 0;
      for (const auto& t : tools->as_array()) {
        const json::array iloc = at(tloc, i++);
        if (!t.is_object()) {
          is.add("dict_type", iloc, "Input should be a valid dictionary");
          continue;
        }
        const auto& to = t.as_object();
        ToolSpec spec;
        if (auto n = get_string(to, "name", iloc, is, true)) {
          spec.name = *n;
          if (!tool_names.insert(*n).second) duplicate_tool = true;
        }
        if (auto d = get_string(to, "description", iloc, is, false)) spec.description = *d;
        if (const json::value* sch = field(to, "input_schema")) {
          if (!sch->is_object()) {
            is.add("dict_type", at(iloc, "input_schema"), "Input should be a valid dictionary");
          }
          spec.input_schema = *sch;
        }
        req.tools.push_back(std::move(spec));
      }
    }
  }
  if (const json::value* tc = field(o, "tool_choice")) {
    const json::array cloc = at(body_loc, "tool_choice");
    if (!tc->is_object()) {
      is.add("dict_type", cloc, "Input should be a valid dictionary");
    } else {
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
  }

  // messages
  const json::value* msgs = field(o, "messages");
  const json::array mloc = at(body_loc, "messages");
  if (!msgs) {
    is.add("missing", mloc, "Field required");
  } else if (!msgs->is_array()) {
    is.add("list_type", mloc, "Input should be a valid list");
  } else {
    std::size_t i = 0;
    for (const auto& m : msgs->as_array()) {
      if (!m.is_object()) {
        is.add("dict_type", at(mloc, i++), "Input should be a valid dictionary");
        continue;
      }
      const json::array iloc = at(mloc, i++);
      const auto& mo = m.as_object();
      ChatMessage msg;
      auto role = get_string(mo, "role", iloc, is, true);
      if (role) {
        if (*role != "user" && *role != "assistant" && *role != "system") {
          is.add("literal_error", at(iloc, "role"), "Input should be 'user', 'assistant' or 'system'");
          role.reset();
        } else {
          msg.role = *role;
        }
      }
      const json::value* content = field(mo, "content");
      if (!content) {
        is.add("missing", at(iloc, "content"), "Field required");
        continue;
      }
      if (content->is_string()) {
        ContentBlock b;
        b.type = "text";
        b.text = std::string(content->as_string());
        msg.content.push_back(std::move(b));
      } else if (content->is_array()) {
        std::size_t j = 0;
        for (const auto& blk : content->as_array()) parse_block(blk, at(at(iloc, "content"), j++), msg, is);
      } else {
        is.add("string_type", at(iloc, "content"), "Input should be a valid string or a list of content blocks");
        continue;
      }
      if (role) req.messages.push_back(std::move(msg));
    }
  }
  if (!is.empty()) return is.error();

  // Rules (each a 400 with an explanation).
  auto rule = [](std::string text) { return make_error(Errc::invalid_request, std::move(text)); };
  const auto& raw_msgs = msgs->as_array();
  if (raw_msgs.empty()) return rule("messages must not be empty");
  for (std::size_t i = 0; i < raw_msgs.size(); ++i) {
    const json::value& c = raw_msgs[i].as_object().at("content");
    if ((c.is_string() && c.as_string().empty()) || (c.is_array() && c.as_array().empty())) {
      return rule("messages." + std::to_string(i) + ".content must not be empty");
    }
  }
  if (duplicate_tool) return rule("tool names must be unique");
  if (req.tool_choice && req.tool_choice->type == "tool") {
    if (req.tool_choice->name.empty()) return rule("tool_choice of type 'tool' needs a name");
    if (!tool_names.contains(req.tool_choice->name)) {
      return rule("tool_choice names tool '" + req.tool_choice->name + "', which is not among tools");
    }
  }
  if (req.messages.back().role == "system") return rule("the last message must be from the user or the assistant");
  // Move system messages out, then check the conversation.
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
  if (req.messages.empty()) return rule("the last message must be from the user or the assistant");
  std::set<std::string> tool_use_ids, tool_result_ids;
  for (std::size_t i = 0; i < req.messages.size(); ++i) {
    const auto& m = req.messages[i];
    for (const auto& b : m.content) {
      if (b.type == "tool_use") {
        if (m.role != "assistant") return rule("tool_use blocks are only allowed in assistant messages");
        if (!tool_use_ids.insert(b.id).second) return rule("duplicate tool_use id '" + b.id + "'");
      } else if (b.type == "tool_result") {
        if (!tool_use_ids.contains(b.id)) {
          return rule("tool_result '" + b.id + "' has no earlier tool_use with that id");
        }
        tool_result_ids.insert(b.id);
      }
    }
  }
  // A trailing assistant message may still be waiting for its tool results.
  if (req.messages.back().role == "assistant") {
    for (const auto& b : req.messages.back().content) {
      if (b.type == "tool_use") tool_use_ids.erase(b.id);
    }
  }
  if (tool_use_ids != tool_result_ids) {
    return rule("the tool_result ids do not match the tool_use ids");
  }
  return req;
}

}  // namespace spool
