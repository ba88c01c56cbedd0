#include "api/router.hpp"

#include "api/chat_parser.hpp"
#include "api/http_error.hpp"
#include "api/request_target.hpp"
#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "core/sha256.hpp"
#include "core/spawn.hpp"
#include "core/utf8.hpp"
#include "stream/events.hpp"
#include "web/static_assets.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include <charconv>

namespace spool {
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

using Clock = std::chrono::steady_clock;

http::Response json_response(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

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

// Parses a Last-Event-ID value: decimal digits only.

json::value time_or_null(const std::optional<SysTime>& t) {
  return t ? json::value(rfc3339(*t)) : json::value(nullptr);
}

// The caller's X-Request-Id when it is a plain token (up to 128 of A-Z a-z 0-9 . _ -), else a new id.
std::string request_id_of(const http::Request& req) {
  if (const std::string* h = req.header("x-request-id"); h && !h->empty() && h->size() <= 128) {
    const bool plain = std::all_of(h->begin(), h->end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
    });
    if (plain) return *h;
  }
  return prefixed_hex_id("req_");
}

// Puts `id` in a §5 error body whose request_id is null (where error_response left it: no parsing).
void stamp_request_id(http::Response& r, const std::string& id) {
  const std::size_t at = r.null_request_id_at;
  if (at == std::string::npos || r.body.compare(at, 4, "null") != 0) return;
  r.body.replace(at, 4, json::serialize(json::string_view(id)));
  r.null_request_id_at = std::string::npos;
}

// The W3C traceparent header when well formed (version 00-fe, non-zero ids), else empty.
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

// Fills the request's trace context from the call's headers.
void take_trace_context(const http::Request& req, ChatRequest& chat) {
  chat.traceparent = valid_traceparent(req.header("traceparent"));
  if (chat.traceparent.empty()) return;
  if (const std::string* s = req.header("tracestate"); s && s->size() <= 512) chat.tracestate = *s;
}

// `v` as a Prometheus label value: backslash, quote and newline escaped.
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
                    {"queue_position", i.queue_position ? json::value(*i.queue_position) : json::value(nullptr)}};
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

// Sends a ping after `interval` without a frame: one timer per observer, re-armed only when it
// fires, never per event. Shared with its timer's handler, which may outlive the source.
class Pinger : public std::enable_shared_from_this<Pinger> {
 public:
  Pinger(const asio::any_io_executor& ex, std::chrono::milliseconds interval, Cursor& cursor)
      : timer_(ex), interval_(interval), cursor_(&cursor), last_frame_(Clock::now()) {}

  void start() { arm(last_frame_ + interval_); }
  void sent() { last_frame_ = Clock::now(); }
  void stop() {
    cursor_ = nullptr;
    timer_.cancel();
  }

 private:
  void arm(Clock::time_point at) {
    timer_.expires_at(at);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || !self->cursor_) return;
      const auto due = self->last_frame_ + self->interval_;
      if (Clock::now() >= due) {
        self->cursor_->interrupt();
        self->arm(Clock::now() + self->interval_);
      } else {
        self->arm(due);
      }
    });
  }

  asio::steady_timer timer_;
  std::chrono::milliseconds interval_;
  Cursor* cursor_;
  Clock::time_point last_frame_;
};

// SSE of one stream for one observer: stored frames as they are, pings when idle.
class SseSource final : public http::BodySource {
 public:
  SseSource(std::unique_ptr<Cursor> cursor, std::chrono::milliseconds ping, Metrics& metrics,
            const asio::any_io_executor& ex)
      : cursor_(std::move(cursor)), metrics_(metrics), pinger_(std::make_shared<Pinger>(ex, ping, *cursor_)) {}

  ~SseSource() override {
    pinger_->stop();
    if (on_done) on_done();
  }

  asio::awaitable<http::ResponseHead> head() override {
    http::ResponseHead h;
    h.content_type = "text/event-stream; charset=utf-8";
    h.headers = {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}};
    pinger_->start();
    co_return h;
  }

  asio::awaitable<http::BodyChunk> next() override {
    http::BodyChunk out;
    if (aborted_) {
      out.last = true;
      co_return out;
    }
    const ReadChunk chunk = co_await cursor_->next();
    switch (chunk.kind) {
      case ReadChunk::Kind::end:
        out.last = true;
        break;
      case ReadChunk::Kind::interrupted: {
        static const asio::const_buffer ping(events::ping_frame().data(), events::ping_frame().size());
        out.buffers = {&ping, 1};
        pinger_->sent();
        break;
      }
      case ReadChunk::Kind::data: {
        std::size_t bytes = 0;
        for (const auto& b : chunk.buffers) bytes += b.size();
        metrics_.sent(chunk.events, bytes);
        out.buffers = chunk.buffers;
        pinger_->sent();
        break;
      }
    }
    co_return out;
  }

  void abort(http::AbortReason why) override {
    aborted_ = true;
    cursor_->abort();
    if (why == http::AbortReason::client_gone && on_client_gone) on_client_gone();
  }

  std::function<void()> on_client_gone;  // the synchronous route cancels its job here
  std::function<void()> on_done;         // the synchronous route deletes its stream here

 private:
  std::unique_ptr<Cursor> cursor_;
  Metrics& metrics_;
  std::shared_ptr<Pinger> pinger_;
  bool aborted_ = false;
};

// A synchronous non-streaming reply: waits for the job, then answers the folded message.
class FoldedReply final : public http::BodySource {
 public:
  FoldedReply(std::unique_ptr<Cursor> cursor, std::shared_ptr<Job> job, std::function<void()> on_done)
      : cursor_(std::move(cursor)), job_(std::move(job)), on_done_(std::move(on_done)) {}
  ~FoldedReply() override { on_done_(); }

  asio::awaitable<http::ResponseHead> head() override {
    for (;;) {
      const ReadChunk c = co_await cursor_->next();
      if (c.kind == ReadChunk::Kind::end) break;
    }
    http::ResponseHead h;
    h.content_type = "application/json";
    if (auto err = job_->failure()) {
      http::Response r = error_response(*err, job_->id());
      h.status = r.status;
      body_ = std::move(r.body);
    } else {
      body_ = json::serialize(job_->folded());
    }
    h.headers.emplace_back("Content-Length", std::to_string(body_.size()));
    h.close = false;
    co_return h;
  }

  asio::awaitable<http::BodyChunk> next() override {
    http::BodyChunk out;
    body_buffer_ = asio::const_buffer(body_.data(), body_.size());
    out.buffers = {&body_buffer_, 1};
    out.last = true;
    co_return out;
  }

  void abort(http::AbortReason why) override {
    cursor_->abort();
    job_->cancel();
  }

 private:
  std::unique_ptr<Cursor> cursor_;
  std::shared_ptr<Job> job_;
  std::function<void()> on_done_;
  std::string body_;
  asio::const_buffer body_buffer_;
};

}  // namespace

struct Router::Call {
  http::Request req;
  boost::urls::url_view url;
  std::vector<std::string> segments;
  std::string request_id;          // the caller's X-Request-Id if usable, else generated
  std::string owner;               // tenant_identity() of the caller's secret ("" with auth off)
  const Tenant* tenant = nullptr;  // whose secret the caller sent (null with auth off)
  std::string route = "unknown";
};

std::string tenant_identity(const Tenant& t) {
  if (!t.name.empty()) return "tenant:" + t.name;
  return "secret:" + sha256_hex(t.secret, 8);
}

Router::Router(ApiOptions opts, JobService& jobs, Metrics& metrics)
    : opts_(std::move(opts)), jobs_(jobs), metrics_(metrics) {
  for (const auto& t : opts_.tenants) identities_.push_back(tenant_identity(t));
  std::string_view p = opts_.path_prefix;
  while (!p.empty()) {
    const auto slash = p.find('/');
    const std::string_view seg = p.substr(0, slash);
    if (!seg.empty()) prefix_.emplace_back(seg);
    if (slash == std::string_view::npos) break;
    p.remove_prefix(slash + 1);
  }
}

http::Response Router::protocol_error(http::ProtocolError e) {
  switch (e) {
    case http::ProtocolError::body_too_large:
      metrics_.request("too_large", 413);
      return error_response(make_error(Errc::too_large, "Request body is larger than the configured limit"));
    case http::ProtocolError::header_too_large: {
      http::Response r = error_response(make_error(Errc::invalid_request, "Request headers are too large"));
      r.status = 431;
      return r;
    }
    case http::ProtocolError::bad_request:
      break;
  }
  return error_response(make_error(Errc::invalid_request, "Malformed HTTP request"));
}

asio::awaitable<http::Response> Router::handle(http::Request req) {
  const auto t0 = Clock::now();
  Call call{std::move(req), {}, {}, {}, {}};
  call.request_id = request_id_of(call.req);
  http::Response r;
  std::exception_ptr escaped;
  try {
    r = co_await dispatch(call);
  } catch (...) {  // any route's failure is answered: one 500, logged with the request id
    escaped = std::current_exception();
  }
  if (escaped) {
    const std::string why = describe(escaped);
    log_event(spdlog::level::err, "request failed",
              {{"request_id", call.request_id}, {"route", call.route}, {"error", why}});
    r = error_response(make_error(Errc::internal, "The server could not complete the request: " + why));
  }
  metrics_.request(call.route, r.status);
  if (r.status >= 400 && !r.source) stamp_request_id(r, call.request_id);
  r.headers.emplace_back("request-id", call.request_id);
  const auto level = r.status >= 500 ? spdlog::level::warn : spdlog::level::debug;
  if (!log_enabled(level)) co_return r;  // the fields below cost allocations per request
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
  const std::string status = std::to_string(r.status);
  const std::string took = fmt::format("{:.3f}", static_cast<double>(us) / 1000.0);
  log_event(level, "request",
            {{"request_id", call.request_id},
             {"method", call.req.method},
             {"route", call.route},
             {"status", status},
             {"ms", took},
             {"owner", call.owner}});
  co_return r;
}

asio::awaitable<Status> Router::visible(const Call& call, std::string id) {
  if (!opts_.stream_scoping) co_return Ok{};
  auto owner = co_await jobs_.owner(id);
  if (!owner) co_return owner.error();
  if (*owner != call.owner) co_return make_error(Errc::not_found, "Stream with message_id " + id + " not found");
  co_return Ok{};
}

namespace {

// True when an If-None-Match value names `etag` (a list, weak tags compared weakly, or "*").
bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  while (!if_none_match.empty()) {
    const std::size_t comma = if_none_match.find(',');
    std::string_view tag = if_none_match.substr(0, comma);
    if_none_match = comma == std::string_view::npos ? std::string_view{} : if_none_match.substr(comma + 1);
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == "*" || tag == etag) return true;
  }
  return false;
}

}  // namespace

std::optional<http::Response> Router::web_asset(const Call& call) const {
  if (!opts_.web_ui || call.req.method != "GET") return std::nullopt;
  const web::StaticAsset* asset = web::find_static_asset(call.segments);
  if (asset == nullptr) return std::nullopt;
  http::Response r;
  // The page loads its files relative to itself: under a path prefix it must end with '/'.
  if (call.segments.empty() && !prefix_.empty() && !call.url.encoded_path().ends_with('/')) {
    r.status = 308;
    r.content_type.clear();
    r.headers.emplace_back("Location", std::string(call.url.encoded_path()) + "/");
    return r;
  }
  r.headers.emplace_back("ETag", std::string(asset->etag));
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (asset->name == "index.html") {
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                           "frame-ancestors 'none'; form-action 'none'");
    r.headers.emplace_back("Referrer-Policy", "no-referrer");
  }
  if (const std::string* tags = call.req.header("if-none-match"); tags && etag_matches(*tags, asset->etag)) {
    r.status = 304;
    r.content_type.clear();
    return r;
  }
  r.content_type = std::string(asset->content_type);
  r.body = std::string(asset->body);
  return r;
}

asio::awaitable<http::Response> Router::dispatch(Call& call) {
  auto target = parse_target(call.req.target, prefix_);
  if (!target) co_return error_response(target.error());
  call.url = target->url;
  call.segments = std::move(target->segments);
  const auto& s = call.segments;
  const std::string& m = call.req.method;

  if (s.size() == 1 && s[0] == "health") {
    call.route = "health";
    if (m != "GET") co_return error_response(make_error(Errc::method_not_allowed, ""));
    co_return health();
  }

  if (opts_.tenants.empty()) {  // no secret to prove who asks: prove at least that a page elsewhere does not
    auto refused = refused_host(opts_.origins, call.req.header("host"));
    if (!refused) refused = refused_origin(opts_.origins, m, call.req.header("origin"), call.req.header("host"));
    if (refused) {
      call.route = "forbidden";
      co_return error_response(make_error(Errc::forbidden, *refused));
    }
  }

  if (auto page = web_asset(call)) {
    call.route = "web";
    co_return std::move(*page);
  }

  if (!opts_.tenants.empty()) {
    const std::string* auth = call.req.header("authorization");
    bool ok = false;
    for (std::size_t i = 0; i < opts_.tenants.size(); ++i) {  // every one compared: no early exit
      if (auth && constant_time_equal(*auth, opts_.tenants[i].secret)) {
        ok = true;
        call.owner = identities_[i];
        call.tenant = &opts_.tenants[i];
      }
    }
    if (!ok) {
      call.route = "unauthorized";
      co_return error_response(make_error(Errc::unauthorized, "Not authenticated"));
    }
  }

  auto method_is = [&](std::string_view want) { return m == want; };
  auto wrong_method = [&]() { return error_response(make_error(Errc::method_not_allowed, "")); };

  if (s.size() == 1 && s[0] == "metrics") {
    call.route = "metrics";
    if (!method_is("GET")) co_return wrong_method();
    co_return metrics();
  }
  if (s.size() >= 2 && s[0] == "v1") {
    if (s.size() == 2 && s[1] == "models") {
      call.route = "models";
      if (!method_is("GET")) co_return wrong_method();
      co_return models();
    }
    if (s.size() >= 2 && s[1] == "messages") {
      if (s.size() == 2) {
        call.route = "message";
        if (!method_is("POST")) co_return wrong_method();
        co_return co_await message(call);
      }
      if (s.size() == 3 && s[2] == "count_tokens") {
        call.route = "count_tokens";
        if (!method_is("POST")) co_return wrong_method();
        co_return co_await count_tokens(call);
      }
      if (s.size() == 3 && s[2] == "validate") {
        call.route = "validate";
        if (!method_is("POST")) co_return wrong_method();
        co_return co_await validate(call);
      }
      if (s[2] == "async") {
        if (s.size() == 3) {
          if (method_is("GET")) {
            call.route = "list";
            co_return co_await list(call);
          }
          call.route = "start";
          if (!method_is("POST")) co_return wrong_method();
          co_return co_await start(call);
        }
        if (s.size() == 5) {
          const std::string& id = s[3];
          const std::string& action = s[4];
          struct R {
            std::string_view action, method;
          };
          static constexpr R routes[] = {
              {"stream", "GET"}, {"status", "GET"}, {"cancel", "POST"}, {"delete", "DELETE"}};
          for (const auto& r : routes) {
            if (action != r.action) continue;
            call.route = std::string(r.action);
            if (!method_is(r.method)) co_return wrong_method();
            if (!is_addressable_id(id)) {  // cannot exist; the answer stays valid JSON whatever its bytes
              co_return error_response(
                  make_error(Errc::not_found, "Stream with message_id " + to_valid_utf8(id) + " not found"));
            }
            if (auto vis = co_await visible(call, id); !vis) co_return error_response(vis.error());
            if (action == "stream") co_return co_await observe(call, id);
            if (action == "status") co_return co_await status(call, id);
            if (action == "cancel") co_return co_await cancel(call, id);
            co_return co_await remove(call, id);
          }
        }
      }
    }
  }
  call.route = "not_found";
  co_return error_response(make_error(Errc::route_not_found, ""));
}

namespace {

// Parses the chat body after checking its content type.
Result<ChatRequest> parse_body(const http::Request& req) {
  if (!is_json_content_type(req.header("content-type"))) {
    return make_error(Errc::invalid_request, "Content-Type must be application/json");
  }
  return parse_chat_request(req.body);
}

}  // namespace

asio::awaitable<http::Response> Router::start(Call& call) {
  std::string id;
  if (auto it = call.url.params().find("message_id"); it != call.url.params().end()) {
    id = (*it).value;
    if (!id.empty() && !is_addressable_id(id)) {
      co_return error_response(
          make_error(Errc::invalid_request,
                     "message_id must be 1 to 256 bytes of UTF-8 without '/', whitespace or control characters"));
    }
  }
  auto req = parse_body(call.req);
  if (!req) co_return error_response(req.error());
  auto model = jobs_.models().resolve(req->model);
  if (!model) co_return error_response(model.error());
  take_trace_context(call.req, *req);
  StartJob job;
  job.id = id;
  job.request_id = call.request_id;
  job.request = std::make_shared<const ChatRequest>(std::move(req.value()));
  job.model = model.value();
  job.owner = call.owner;
  if (call.tenant != nullptr) {
    job.owner_active_limit = call.tenant->max_active_streams;
    job.owner_retained_limit = call.tenant->max_retained_streams;
  }
  if (const std::string* key = call.req.header("idempotency-key"); key && !key->empty()) {
    job.idempotency_key = *key;
    job.body_digest = std::to_string(fnv1a(call.req.body, id));
  }
  auto started = co_await jobs_.start(std::move(job));
  if (!started) co_return error_response(started.error());
  json::object body{{"message_id", started->id}, {"status", "pending"}, {"message", "Request initiated successfully"}};
  co_return json_response(200, json::serialize(body));
}

asio::awaitable<http::Response> Router::observe(Call& call, std::string id) {
  std::uint64_t after = 0;
  bool resumed = false;
  std::optional<std::string> raw;
  if (auto it = call.url.params().find("last_event_id"); it != call.url.params().end() && !(*it).value.empty()) {
    raw = std::string((*it).value);
  } else if (const std::string* h = call.req.header("last-event-id"); h && !h->empty()) {
    raw = *h;
  }
  if (raw) {
    auto n = parse_event_id(*raw);
    if (!n) {
      co_return error_response(
          make_error(Errc::invalid_request, "Last-Event-ID must be a non-negative integer event position"));
    }
    after = *n;
    resumed = true;
  }
  if (jobs_.observers() >= opts_.max_observers) {
    co_return error_response(
        make_error(Errc::overloaded, "Too many open observers (limit " + std::to_string(opts_.max_observers) + ")"));
  }
  if (static_cast<std::size_t>(jobs_.observers_of(id)) >= opts_.max_observers_per_stream) {
    co_return error_response(make_error(Errc::overloaded, "Too many open observers of this stream (limit " +
                                                              std::to_string(opts_.max_observers_per_stream) + ")"));
  }
  auto cursor = co_await jobs_.open(id, after, call.req.executor);
  if (!cursor) co_return error_response(cursor.error());
  if (resumed && cursor.value()->exhausted_at_open()) {
    http::Response r;
    r.status = 204;
    r.content_type.clear();
    co_return r;
  }
  http::Response r;
  r.source = std::make_unique<SseSource>(std::move(cursor.value()), opts_.ping_interval, metrics_, call.req.executor);
  co_return r;
}

asio::awaitable<http::Response> Router::list(Call& call) {
  ListQuery q;
  if (opts_.stream_scoping) q.owner = call.owner;
  const auto params = call.url.params();
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
        co_return error_response(make_error(Errc::invalid_request,
                                            "status must be one or more of pending, processing, completed, "
                                            "cancelled, error (comma-separated), not '" +
                                                std::string(name) + "'"));
      }
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
      if (rest.empty()) {
        co_return error_response(make_error(Errc::invalid_request, "status must not end with a comma"));
      }
    }
  }
  if (auto it = params.find("limit"); it != params.end()) {
    const std::string v = (*it).value;
    std::size_t n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || p != v.data() + v.size() || n < 1 || n > 1000) {
      co_return error_response(make_error(Errc::invalid_request, "limit must be an integer from 1 to 1000"));
    }
    q.limit = n;
  }
  if (auto it = params.find("cursor"); it != params.end() && !(*it).value.empty()) {
    const std::string v = (*it).value;
    q.after = decode_list_cursor(v);
    if (!q.after) {
      co_return error_response(make_error(Errc::invalid_request, "cursor is not one this server gave out"));
    }
  }
  const auto t0 = Clock::now();
  auto page = co_await jobs_.list(std::move(q));
  metrics_.broker_latency(
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count()));
  if (!page) co_return error_response(page.error());
  json::array data;
  data.reserve(page->streams.size());
  for (const auto& info : page->streams) data.push_back(status_object(info));
  json::object body{{"data", std::move(data)}, {"has_more", page->has_more}};
  body["next_cursor"] = page->has_more
                            ? json::value(encode_list_cursor(page->streams.back().created_at, page->streams.back().id))
                            : json::value(nullptr);
  co_return json_response(200, json::serialize(body));
}

asio::awaitable<http::Response> Router::status(Call& call, std::string id) {
  const auto t0 = Clock::now();
  auto info = co_await jobs_.info(id);
  metrics_.broker_latency(
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count()));
  if (!info) co_return error_response(info.error());
  co_return json_response(200, status_json(*info));
}

asio::awaitable<http::Response> Router::cancel(Call& call, std::string id) {
  const auto t0 = Clock::now();
  auto done = co_await jobs_.cancel(id);
  if (!done) co_return error_response(done.error());
  metrics_.cancel_latency(
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count()));
  json::object body{{"message", "Stream cancelled successfully"}, {"message_id", id}};
  co_return json_response(200, json::serialize(body));
}

asio::awaitable<http::Response> Router::remove(Call& call, std::string id) {
  auto done = co_await jobs_.remove(id);
  if (!done) co_return error_response(done.error());
  co_return json_response(200, "null");
}

asio::awaitable<http::Response> Router::message(Call& call) {
  auto req = parse_body(call.req);
  if (!req) co_return error_response(req.error());
  auto model = jobs_.models().resolve(req->model);
  if (!model) co_return error_response(model.error());
  const bool stream = req->stream;
  take_trace_context(call.req, *req);
  StartJob job;
  job.request_id = call.request_id;
  job.request = std::make_shared<const ChatRequest>(std::move(req.value()));
  job.model = model.value();
  job.owner = call.owner;
  if (call.tenant != nullptr) {
    job.owner_active_limit = call.tenant->max_active_streams;
    job.owner_retained_limit = call.tenant->max_retained_streams;
  }
  job.fold = !stream;
  auto started = co_await jobs_.start(std::move(job));
  if (!started) co_return error_response(started.error());
  auto cursor = co_await jobs_.open(started->id, 0, call.req.executor);
  if (!cursor) co_return error_response(cursor.error());
  // The job's stream is internal: delete it once the reply is over.
  auto remove = [jobs = &jobs_, id = started->id, ex = call.req.executor] {
    spawn_detached(
        ex, [jobs, id]() -> asio::awaitable<void> { co_await jobs->remove(id); }, "synchronous reply's stream removal");
  };
  http::Response r;
  if (stream) {
    auto src = std::make_unique<SseSource>(std::move(cursor.value()), opts_.ping_interval, metrics_, call.req.executor);
    src->on_client_gone = [job = started->job] { job->cancel(); };
    src->on_done = remove;
    r.source = std::move(src);
  } else {
    r.source = std::make_unique<FoldedReply>(std::move(cursor.value()), started->job, remove);
  }
  co_return r;
}

asio::awaitable<http::Response> Router::count_tokens(Call& call) {
  auto req = parse_body(call.req);
  if (!req) co_return error_response(req.error());
  auto model = jobs_.models().resolve(req->model);
  if (!model) co_return error_response(model.error());
  auto request = std::make_shared<const ChatRequest>(std::move(req.value()));
  auto n = co_await jobs_.count_tokens(model.value(), std::move(request));
  if (!n) co_return error_response(n.error());
  co_return json_response(200, json::serialize(json::object{{"input_tokens", *n}}));
}

asio::awaitable<http::Response> Router::validate(Call& call) {
  auto req = parse_body(call.req);
  std::optional<Error> failure;
  if (!req) {
    failure = req.error();
  } else if (auto model = jobs_.models().resolve(req->model); !model) {
    failure = model.error();
  }
  if (!failure) co_return json_response(200, R"({"valid":true,"errors":null})");
  if (!failure->detail.is_null()) co_return error_response(*failure);
  json::object body{{"valid", false}, {"errors", json::array{json::value(failure->explanation)}}};
  co_return json_response(400, json::serialize(body));
}

http::Response Router::health() {
  // Alive (it answers); "unavailable" (503) when the broker cannot serve, "degraded" when an
  // engine cannot.
  bool engines_ready = true;
  json::array engines;
  for (const auto& m : jobs_.models().models()) {
    const auto why = m.impl->unready_reason();
    engines_ready = engines_ready && !why;
    json::object e{{"model", m.name}, {"engine", m.engine}, {"ready", !why}};
    if (why) e["reason"] = *why;
    engines.push_back(std::move(e));
  }
  const auto broker_why = jobs_.broker_unready_reason();
  json::object broker{{"type", opts_.broker_name}, {"ready", !broker_why}};
  if (broker_why) broker["reason"] = *broker_why;
  const char* status = broker_why ? "unavailable" : engines_ready ? "ok" : "degraded";
  json::object body{{"status", status},
                    {"broker", std::move(broker)},
                    {"engines", std::move(engines)},
                    {"active_jobs", jobs_.active()}};
  return json_response(broker_why ? 503 : 200, json::serialize(body));
}

http::Response Router::metrics() {
  std::string out;
  metrics_.render(out);
  out += "# HELP spool_streams Streams held by the broker, by status.\n# TYPE spool_streams gauge\n";
  for (const auto& [st, n] : jobs_.counts()) {
    out += "spool_streams{status=\"" + std::string(to_string(st)) + "\"} " + std::to_string(n) + "\n";
  }
  out += "# HELP spool_observers Open observers.\n# TYPE spool_observers gauge\n";
  out += "spool_observers " + std::to_string(jobs_.observers()) + "\n";
  out += "# HELP spool_active_jobs Jobs running or queued on this instance.\n# TYPE spool_active_jobs gauge\n";
  out += "spool_active_jobs " + std::to_string(jobs_.active()) + "\n";
  out +=
      "# HELP spool_queued_jobs Jobs waiting behind their engine's concurrency limit.\n# TYPE spool_queued_jobs "
      "gauge\n";
  out += "spool_queued_jobs " + std::to_string(jobs_.queued()) + "\n";
  out +=
      "# HELP spool_output_tokens_total Tokens produced by the engines, by model (rate() is tokens/s).\n"
      "# TYPE spool_output_tokens_total counter\n";
  for (const auto& [model, n] : jobs_.output_tokens()) {
    out += "spool_output_tokens_total{model=\"" + prometheus_label(model) + "\"} " + std::to_string(n) + "\n";
  }
  http::Response r = json_response(200, std::move(out));
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  return r;
}

http::Response Router::models() {
  json::array data;
  const Model* def = jobs_.models().default_model();
  for (const auto& m : jobs_.models().models()) {
    data.push_back(json::object{
        {"type", "model"}, {"id", m.name}, {"display_name", m.name}, {"engine", m.engine}, {"default", &m == def}});
  }
  json::value first = data.empty() ? json::value(nullptr) : data.front().as_object().at("id");
  json::value last = data.empty() ? json::value(nullptr) : data.back().as_object().at("id");
  json::object body{{"data", std::move(data)}, {"has_more", false}, {"first_id", first}, {"last_id", last}};
  return json_response(200, json::serialize(body));
}

}  // namespace spool
