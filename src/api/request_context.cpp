#include "api/request_context.hpp"

#include "api/chat_parser.hpp"
#include "core/ids.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace spool {
namespace json = boost::json;

bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

bool is_json_content_type(const std::string* ct) {
  if (!ct) return false;
  std::string_view v = *ct;
  v = v.substr(0, v.find(';'));
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  constexpr std::string_view want = "application/json";
  if (v.size() != want.size()) return false;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(v[i])) != want[i]) return false;
  }
  return true;
}

std::uint64_t fnv1a(std::string_view a, std::string_view b) {
  std::uint64_t h = 1469598103934665603ULL;
  for (std::string_view s : {a, std::string_view("\0", 1), b}) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ULL;
    }
  }
  return h;
}

std::string request_id_of(const http::Request& req) {
  if (const std::string* h = req.header("x-request-id"); h && !h->empty() && h->size() <= 128) {
    const bool plain = std::all_of(h->begin(), h->end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
    });
    if (plain) return *h;
  }
  return prefixed_hex_id("req_");
}

void stamp_request_id(http::Response& r, const std::string& id) {
  const std::size_t at = r.null_request_id_at;
  if (at == std::string::npos || r.body.compare(at, 4, "null") != 0) return;
  r.body.replace(at, 4, json::serialize(json::string_view(id)));
  r.null_request_id_at = std::string::npos;
}

std::string valid_traceparent(const std::string* h) {
  if (h == nullptr || h->size() != 55) return {};
  const std::string& t = *h;
  auto hex = [&](std::size_t from, std::size_t n) {
    for (std::size_t i = from; i < from + n; ++i) {
      if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f'))) return false;
    }
    return true;
  };
  if (!hex(0, 2) || t[2] != '-' || !hex(3, 32) || t[35] != '-' || !hex(36, 16) || t[52] != '-' || !hex(53, 2)) {
    return {};
  }
  if (t.compare(0, 2, "ff") == 0) return {};
  if (t.compare(3, 32, std::string(32, '0')) == 0 || t.compare(36, 16, std::string(16, '0')) == 0) return {};
  return t;
}

void take_trace_context(const http::Request& req, ChatRequest& chat) {
  chat.traceparent = valid_traceparent(req.header("traceparent"));
  if (chat.traceparent.empty()) return;
  if (const std::string* s = req.header("tracestate"); s && s->size() <= 512) chat.tracestate = *s;
}

Result<ChatRequest> parse_body(const http::Request& req) {
  if (!is_json_content_type(req.header("content-type"))) {
    return make_error(Errc::invalid_request, "Content-Type must be application/json");
  }
  return parse_chat_request(req.body);
}

Result<ListQuery> parse_list_query(const boost::urls::params_view& params) {
  ListQuery q;
  if (auto it = params.find("status"); it != params.end()) {
    const std::string value = (*it).value;  // decoded: a string of its own
    std::string_view rest = value;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string_view name = rest.substr(0, comma);
      bool known = false;
      for (auto st : {StreamStatus::pending, StreamStatus::processing, StreamStatus::completed, StreamStatus::cancelled,
                      StreamStatus::error}) {
        if (to_string(st) == name) {
          q.statuses.push_back(st);
          known = true;
        }
      }
      if (!known) {
        return make_error(Errc::invalid_request,
                          "status must be one or more of pending, processing, completed, cancelled, error "
                          "(comma-separated), not '" +
                              std::string(name) + "'");
      }
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
      if (rest.empty()) return make_error(Errc::invalid_request, "status must not end with a comma");
    }
  }
  if (auto it = params.find("limit"); it != params.end()) {
    const std::string v = (*it).value;
    std::size_t n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || p != v.data() + v.size() || n < 1 || n > 1000) {
      return make_error(Errc::invalid_request, "limit must be an integer from 1 to 1000");
    }
    q.limit = n;
  }
  if (auto it = params.find("cursor"); it != params.end() && !(*it).value.empty()) {
    const std::string v = (*it).value;
    q.after = decode_list_cursor(v);
    if (!q.after) return make_error(Errc::invalid_request, "cursor is not one this server gave out");
  }
  return q;
}

}  // namespace spool
