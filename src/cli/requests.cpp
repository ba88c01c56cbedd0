#include "cli/requests.hpp"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>

namespace spool::cli {

namespace json = boost::json;

std::string exit_codes_help() {
  return "Exit codes:\n"
         "  0    success\n"
         "  1    the job ended in error, or someone else cancelled it\n"
         "  2    usage error (bad flags or arguments)\n"
         "  3    cannot reach the server (or gave up reconnecting after --retry-for seconds)\n"
         "  4    not authenticated (401)\n"
         "  5    not found (404: unknown id, or no Spool API at --url)\n"
         "  6    any other refusal by the server (400, 413, 429, 5xx)\n"
         "  130  interrupted (Ctrl-C)\n"
         "  141  standard output was closed (e.g. | head): chat cancels its job, watch stops\n";
}

std::string chat_body(const ChatParams& p) {
  json::object body;
  if (!p.model.empty()) body["model"] = p.model;
  body["max_tokens"] = p.max_tokens;
  json::array messages;
  messages.push_back(json::object{{"role", "user"}, {"content", p.prompt}});
  body["messages"] = std::move(messages);
  if (!p.system.empty()) body["system"] = p.system;
  if (p.temperature) body["temperature"] = *p.temperature;
  if (p.top_p) body["top_p"] = *p.top_p;
  if (!p.stop_sequences.empty()) {
    json::array stops;
    for (const auto& s : p.stop_sequences) stops.emplace_back(s);
    body["stop_sequences"] = std::move(stops);
  }
  if (p.thinking_budget) body["thinking"] = json::object{{"type", "enabled"}, {"budget_tokens", *p.thinking_budget}};
  return json::serialize(body);
}

Result<std::string> normalize_base_url(std::string_view url) {
  const auto bad = [&](std::string_view why) {
    return make_error(Errc::invalid_request, "invalid --url '" + std::string(url) + "': " + std::string(why));
  };
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) return bad("not an absolute http:// or https:// URL");
  const auto& u = *parsed;
  std::string scheme(u.scheme());
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "http" && scheme != "https") return bad("the scheme must be http or https");
  if (u.encoded_host().empty()) return bad("no host");
  if (u.has_query()) return bad("no query allowed");
  if (u.has_fragment()) return bad("no fragment allowed");
  std::string out(url);
  while (!out.empty() && out.back() == '/') out.pop_back();
  return out;
}

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string list_query(std::string_view statuses, std::int64_t limit, std::string_view cursor) {
  std::string q;
  const auto add = [&](std::string_view key, std::string_view value) {
    q += q.empty() ? '?' : '&';
    q += key;
    q += '=';
    q += value;
  };
  if (!statuses.empty()) {
    // Commas separate statuses: keep them readable, encode everything else.
    std::string enc;
    std::string_view rest = statuses;
    for (;;) {
      const auto comma = rest.find(',');
      enc += percent_encode(rest.substr(0, comma));
      if (comma == std::string_view::npos) break;
      enc += ',';
      rest.remove_prefix(comma + 1);
    }
    add("status", enc);
  }
  if (limit > 0) add("limit", std::to_string(limit));
  if (!cursor.empty()) add("cursor", percent_encode(cursor));
  return q;
}

int exit_code_for_http_status(int status) {
  if (status == 401) return exit_code::unauthorized;
  if (status == 404) return exit_code::not_found;
  return exit_code::refused;
}

namespace {

std::string render_detail(const json::value& d) {
  if (const auto* s = d.if_string()) return std::string(*s);
  const auto* arr = d.if_array();
  if (!arr) return {};
  std::string out;
  for (const auto& item : *arr) {
    const auto* o = item.if_object();
    if (!o) continue;
    std::string loc;
    if (const auto* l = o->if_contains("loc"); l && l->is_array()) {
      for (const auto& part : l->get_array()) {
        if (!loc.empty()) loc += '.';
        if (const auto* ps = part.if_string()) {
          loc += *ps;
        } else if (part.is_int64()) {
          loc += std::to_string(part.get_int64());
        }
      }
    }
    std::string msg;
    if (const auto* m = o->if_contains("msg"); m && m->is_string()) msg = m->get_string();
    if (!out.empty()) out += "; ";
    if (!loc.empty()) {
      out += loc;
      out += ": ";
    }
    out += msg;
  }
  return out;
}

}  // namespace

std::string error_explanation(std::string_view body) {
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec);
  if (ec) return {};
  return error_explanation_of(v);
}

std::string error_explanation_of(const json::value& v) {
  const auto* o = v.if_object();
  if (!o) return {};
  if (const auto* err = o->if_contains("error"); err && err->is_object()) {
    if (const auto* det = err->get_object().if_contains("detail"); det && det->is_object()) {
      if (const auto* x = det->get_object().if_contains("explanation")) {
        std::string s = render_detail(*x);
        if (!s.empty()) return s;
      }
    }
  }
  if (const auto* d = o->if_contains("detail")) {
    std::string s = render_detail(*d);
    if (!s.empty()) return s;
  }
  if (const auto* err = o->if_contains("error"); err && err->is_object()) {
    if (const auto* m = err->get_object().if_contains("message"); m && m->is_string()) {
      return std::string(m->get_string());
    }
  }
  return {};
}

bool is_route_not_found(std::string_view body) {
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return true;  // not Spool's JSON: no Spool API there
  const auto* d = v.get_object().if_contains("detail");
  return d && d->is_string() && d->get_string() == "Not Found";
}

std::string transport_reason(const Error& e) {
  const std::string& x = e.explanation;
  if (x.rfind("upstream ", 0) == 0) {
    // "upstream HOST:PORT: reason" where HOST may be a bracketed IPv6 address.
    std::size_t from = 9;
    if (from < x.size() && x[from] == '[') from = x.find(']', from);
    if (from != std::string::npos) {
      const auto sep = x.find(": ", from);
      if (sep != std::string::npos) return x.substr(sep + 2);
    }
  }
  return x;
}

}  // namespace spool::cli
