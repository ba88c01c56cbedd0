#include "cli/render.hpp"

#include "cli/requests.hpp"

#include <boost/json.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace spool::cli {

namespace json = boost::json;

namespace {

const json::value* member(const json::value& v, std::string_view key) {
  const auto* o = v.if_object();
  return o ? o->if_contains(key) : nullptr;
}

std::string string_of(const json::value* v) {
  if (v && v->is_string()) return std::string(v->get_string());
  return {};
}

std::int64_t int_of(const json::value* v, std::int64_t fallback) {
  if (v && v->is_int64()) return v->get_int64();
  if (v && v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  return fallback;
}

// Renders a JSON value for a table or `key: value` line: strings bare, null as "-".
std::string plain(const json::value* v) {
  if (!v || v->is_null()) return "-";
  if (v->is_string()) return std::string(v->get_string());
  return json::serialize(*v);
}

}  // namespace

Printed EventFolder::feed(std::string_view type, std::string_view data) {
  Printed p;
  boost::system::error_code ec;
  const json::value ev = json::parse(data, ec);
  if (ec || !ev.is_object()) return p;
  std::string kind = string_of(member(ev, "type"));
  if (kind.empty()) kind = std::string(type);
  const auto out = [&](std::string s) {
    if (s.empty()) return;
    last_out_ = s.back();
    any_out_ = true;
    p.out += s;
  };

  if (kind == "content_block_start") {
    const std::int64_t index = int_of(member(ev, "index"), -1);
    const json::value* cb = member(ev, "content_block");
    Block b;
    if (cb) {
      b.type = string_of(member(*cb, "type"));
      b.name = string_of(member(*cb, "name"));
      if (const auto* in = member(*cb, "input"); in && !in->is_null()) b.start_input = json::serialize(*in);
    }
    blocks_[index] = std::move(b);
  } else if (kind == "content_block_delta") {
    const std::int64_t index = int_of(member(ev, "index"), -1);
    const json::value* d = member(ev, "delta");
    if (!d) return p;
    const std::string dt = string_of(member(*d, "type"));
    if (dt == "text_delta") {
      ++deltas_;
      out(string_of(member(*d, "text")));
    } else if (dt == "thinking_delta") {
      ++deltas_;
      std::string t = string_of(member(*d, "thinking"));
      if (!t.empty()) {
        blocks_[index].thinking_ends_with_newline = t.back() == '\n';
        p.thinking = std::move(t);
      }
    } else if (dt == "input_json_delta") {
      blocks_[index].input += string_of(member(*d, "partial_json"));
    }
  } else if (kind == "content_block_stop") {
    const std::int64_t index = int_of(member(ev, "index"), -1);
    auto it = blocks_.find(index);
    if (it == blocks_.end()) return p;
    const Block& b = it->second;
    if (b.type == "thinking" && !b.thinking_ends_with_newline) p.thinking = "\n";
    if (b.type == "tool_use") {
      const std::string& input =
          b.input.empty() ? (b.start_input.empty() ? std::string("{}") : b.start_input) : b.input;
      std::string line = any_out_ && last_out_ != '\n' ? "\n" : "";
      line += "[tool_use " + b.name + " " + input + "]\n";
      out(std::move(line));
    }
    blocks_.erase(it);
  } else if (kind == "message_delta") {
    if (const auto* u = member(ev, "usage")) usage_tokens_ = int_of(member(*u, "output_tokens"), usage_tokens_);
    if (const auto* d = member(ev, "delta")) cancelled_reason_ = string_of(member(*d, "stop_reason")) == "cancelled";
  } else if (kind == "message_stop") {
    end_ = cancelled_reason_ ? StreamEnd::cancelled : StreamEnd::completed;
  } else if (kind == "error") {
    end_ = StreamEnd::error;
    error_ = error_explanation_of(ev);
    if (error_.empty()) error_ = "unknown error";
  }
  return p;
}

std::string EventFolder::final_newline() const { return any_out_ && last_out_ != '\n' ? "\n" : ""; }

std::string short_time(std::string_view t) {
  // 2024-05-01T12:34:56.123456Z
  if (t.size() >= 20 && t[10] == 'T' && t[4] == '-' && t[13] == ':' && t.back() == 'Z') {
    return std::string(t.substr(0, 10)) + " " + std::string(t.substr(11, 8));
  }
  return std::string(t);
}

std::string format_status(const json::value& st) {
  std::string s;
  const auto line = [&](std::string_view key, const std::string& value) {
    s += key;
    s += ": ";
    s += value;
    s += '\n';
  };
  const json::value* meta = member(st, "metadata");
  const json::value* none = nullptr;
  const auto meta_of = [&](std::string_view key) { return meta ? member(*meta, key) : none; };
  line("id", plain(member(st, "message_id")));
  line("status", plain(member(st, "status")));
  line("model", plain(meta_of("model")));
  line("created", plain(member(st, "created_at")));
  line("updated", plain(member(st, "updated_at")));
  line("completed", plain(member(st, "completed_at")));
  if (const auto* e = member(st, "error_message"); e && !e->is_null()) line("error", plain(e));
  if (const auto* u = meta_of("usage")) {
    line("usage", fmt::format("{} input tokens, {} output tokens", plain(member(*u, "input_tokens")),
                              plain(member(*u, "output_tokens"))));
  }
  if (const auto* e = meta_of("events")) line("events", plain(e));
  if (const auto* o = meta_of("observers")) line("observers", plain(o));
  if (const auto* q = meta_of("queue_position"); q && !q->is_null()) line("queue position", plain(q));
  return s;
}

std::string format_list(const std::vector<json::value>& streams) {
  std::vector<std::array<std::string, 5>> rows;
  rows.push_back({"ID", "STATUS", "MODEL", "CREATED", "OUT TOKENS"});
  for (const auto& st : streams) {
    const json::value* meta = member(st, "metadata");
    const json::value* usage = meta ? member(*meta, "usage") : nullptr;
    rows.push_back({plain(member(st, "message_id")), plain(member(st, "status")),
                    plain(meta ? member(*meta, "model") : nullptr), short_time(plain(member(st, "created_at"))),
                    plain(usage ? member(*usage, "output_tokens") : nullptr)});
  }
  std::array<std::size_t, 5> width{};
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string s;
  for (const auto& r : rows) {
    for (std::size_t i = 0; i + 1 < r.size(); ++i) {
      s += r[i];
      s.append(width[i] - r[i].size() + 2, ' ');
    }
    s += r.back();
    s += '\n';
  }
  return s;
}

std::string format_progress(std::uint64_t tokens, double seconds) {
  const double rate = seconds > 0 ? static_cast<double>(tokens) / seconds : 0.0;
  return fmt::format("{} tokens \u00b7 {:.1f} tok/s \u00b7 {:.1f} s", tokens, rate, seconds);
}

}  // namespace spool::cli
