#include "sse.hpp"

#include <cstdio>
#include <string>
#include <vector>

namespace bench {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool icontains_token(std::string_view list, std::string_view token) {
  // Comma-separated header value: does it contain `token` as one element?
  while (!list.empty()) {
    auto comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

long parse_response_head(std::string_view buf, ResponseHead& out) {
  auto end = buf.find("\r\n\r\n");
  if (end == std::string_view::npos) return buf.size() > (64u << 10) ? -1 : 0;
  std::string_view head = buf.substr(0, end + 2);
  out = ResponseHead{};
  auto eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1.") return -1;
  out.minor_version = status_line[7] - '0';
  if (status_line[8] != ' ') return -1;
  int code = 0;
  for (std::size_t i = 9; i < 12; ++i) {
    char c = status_line[i];
    if (c < '0' || c > '9') return -1;
    code = code * 10 + (c - '0');
  }
  out.status = code;
  bool keep_alive = false;
  out.close = out.minor_version == 0;
  head.remove_prefix(eol + 2);
  while (!head.empty()) {
    auto e = head.find("\r\n");
    std::string_view line = head.substr(0, e);
    head.remove_prefix(e == std::string_view::npos ? head.size() : e + 2);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return -1;
    std::string_view name = line.substr(0, colon);
    std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      std::uint64_t v = 0;
      if (value.empty()) return -1;
      for (char c : value) {
        if (c < '0' || c > '9') return -1;
        v = v * 10 + static_cast<unsigned>(c - '0');
      }
      out.has_length = true;
      out.content_length = v;
    } else if (iequals(name, "transfer-encoding")) {
      if (icontains_token(value, "chunked")) out.chunked = true;
    } else if (iequals(name, "connection")) {
      if (icontains_token(value, "close")) out.close = true;
      if (icontains_token(value, "keep-alive")) keep_alive = true;
    } else if (iequals(name, "content-type")) {
      out.content_type.assign(value.data(), value.size());
    }
  }
  if (out.minor_version == 0 && keep_alive) out.close = false;
  return static_cast<long>(end + 4);
}

void BodyReader::start(const ResponseHead& h, bool head_request) {
  chunked_ = ChunkedDecoder{};
  remaining_ = 0;
  if (head_request || (h.status >= 100 && h.status < 200) || h.status == 204 || h.status == 304) {
    mode_ = Mode::None;
  } else if (h.chunked) {
    mode_ = Mode::Chunked;
  } else if (h.has_length) {
    mode_ = Mode::Length;
    remaining_ = h.content_length;
  } else {
    mode_ = Mode::UntilClose;
  }
}

// ---------------------------------------------------------------------------------------------
// Self-test: every input is fed whole, byte by byte, and split at every position into two
// pieces; each way must give the same events.

namespace {

struct Seen {
  std::string type, data, id;
  bool operator==(const Seen&) const = default;
};

std::vector<Seen> parse_split(std::string_view in, std::size_t split, bool bytewise) {
  SseParser p;
  std::vector<Seen> got;
  auto cb = [&](const SseEvent& e) { got.push_back({std::string(e.type), std::string(e.data), std::string(e.id)}); };
  if (bytewise) {
    for (char c : in) p.feed(&c, 1, cb);
  } else {
    p.feed(in.data(), split, cb);
    p.feed(in.data() + split, in.size() - split, cb);
  }
  return got;
}

std::string show(const std::vector<Seen>& v) {
  std::string s;
  for (auto& e : v) s += "[" + e.type + "|" + e.data + "|" + e.id + "]";
  return s;
}

}  // namespace

int selftest(int& passed) {
  int failed = 0;
  passed = 0;
  auto check = [&](bool ok, const std::string& what) {
    if (ok) {
      ++passed;
    } else {
      ++failed;
      std::fprintf(stderr, "selftest FAILED: %s\n", what.c_str());
    }
  };

  struct Case {
    std::string name, input;
    std::vector<Seen> want;
  };
  std::vector<Case> cases = {
      {"lf", "event: a\ndata: {\"x\":1}\nid: 1\n\nevent: b\ndata: 2\n\n", {{"a", "{\"x\":1}", "1"}, {"b", "2", "1"}}},
      {"crlf", "event: a\r\ndata: x\r\nid: 7\r\n\r\ndata: y\r\n\r\n", {{"a", "x", "7"}, {"message", "y", "7"}}},
      {"cr", "event: a\rdata: x\r\rdata: y\r\r", {{"a", "x", ""}, {"message", "y", ""}}},
      {"bom+comment", "\xEF\xBB\xBF: hi\n\n:ping\ndata: z\n\n", {{"message", "z", ""}}},
      {"multiline", "data: a\ndata:b\ndata\n\n", {{"message", "a\nb\n", ""}}},
      {"no data no dispatch", "event: x\n\nid: 5\n\ndata: q\n\n", {{"message", "q", "5"}}},
      {"empty data", "data:\n\n", {{"message", "", ""}}},
      {"unterminated", "data: a\n\ndata: b\n", {{"message", "a", ""}}},
      {"two spaces", "data:  two\n\n", {{"message", " two", ""}}},
      {"id with nul ignored", std::string("id: 3\n\nid: a") + '\0' + "b\ndata: d\n\n", {{"message", "d", "3"}}},
      {"field no colon", "event\ndata: e\n\n", {{"message", "e", ""}}},
  };
  for (auto& c : cases) {
    auto whole = parse_split(c.input, c.input.size(), false);
    check(whole == c.want, c.name + " whole: got " + show(whole) + " want " + show(c.want));
    auto bytes = parse_split(c.input, 0, true);
    check(bytes == c.want, c.name + " bytewise: got " + show(bytes));
    bool all = true;
    for (std::size_t s = 0; s <= c.input.size(); ++s) {
      if (parse_split(c.input, s, false) != c.want) {
        all = false;
        check(false, c.name + " split at " + std::to_string(s) + ": got " + show(parse_split(c.input, s, false)));
        break;
      }
    }
    if (all) ++passed;
  }
  {
    SseParser p;
    std::string input = "retry: 1500\ndata: r\n\nretry: x\n\n";
    int n = 0;
    p.feed(input.data(), input.size(), [&](const SseEvent&) { ++n; });
    check(n == 1 && p.retry_ms() == 1500, "retry");
  }

  // Chunked bodies, split at every position; the leftover after the final chunk must be
  // reported as not consumed.
  {
    std::string body = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
    for (std::size_t s = 0; s <= body.size(); ++s) {
      ChunkedDecoder d;
      std::string out;
      auto sink = [&](const char* p, std::size_t n) { out.append(p, n); };
      long a = d.feed(body.data(), s, sink);
      long b = a < 0 ? -1 : d.feed(body.data() + s, body.size() - s, sink);
      bool ok =
          a >= 0 && b >= 0 && out == "hello world" && d.done() && static_cast<std::size_t>(a + b) == body.size() - 4;
      if (!ok) {
        check(false, "chunked split at " + std::to_string(s) + " out=" + out);
        break;
      }
      if (s == body.size()) ++passed;
    }
    ChunkedDecoder bad;
    check(bad.feed("zz\r\n", 4, [](const char*, std::size_t) {}) < 0, "chunked rejects bad size");
  }
  {
    ResponseHead h;
    std::string r = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\nabc";
    long n = parse_response_head(r, h);
    check(n == static_cast<long>(r.size() - 3) && h.status == 200 && h.chunked && !h.close &&
              h.content_type == "text/event-stream",
          "response head chunked");
    std::string r2 = "HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\nConnection: close\r\n\r\n";
    n = parse_response_head(r2, h);
    check(n == static_cast<long>(r2.size()) && h.status == 404 && h.has_length && h.content_length == 12 && h.close,
          "response head length/close");
    check(parse_response_head("HTTP/1.1 200 OK\r\nX: y\r\n", h) == 0, "response head incomplete");
    check(parse_response_head("garbage\r\n\r\n", h) < 0, "response head malformed");
  }
  return failed;
}

}  // namespace bench
