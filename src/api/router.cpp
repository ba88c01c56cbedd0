#include "api/router.hpp"

#include "api/body_sources.hpp"
#include "api/chat_parser.hpp"
#include "api/http_error.hpp"
#include "api/request_context.hpp"
#include "api/request_target.hpp"
#include "api/responses.hpp"
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

std::uint64_t micros_since(Clock::time_point t0) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
}

}  // namespace

struct Router::Call {
  http::Request req;
  boost::urls::url_view url;
  std::vector<std::string> segments;
  std::string id;                                  // the stream a per-stream route names (":id")
  std::string request_id;                          // the caller's X-Request-Id if usable, else generated
  std::string owner;                               // tenant_identity() of the caller's secret ("" with auth off)
  const Tenant* tenant = nullptr;                  // whose secret the caller sent (null with auth off)
  std::optional<std::uint32_t> token_incarnation;  // what a read token let the caller read (no secret)
  std::string route = "unknown";
};

std::string tenant_identity(const Tenant& t) {
  if (!t.name.empty()) return "tenant:" + t.name;
  return "secret:" + sha256_hex(t.secret, 8);
}

Router::Router(ApiOptions opts, Jobs& jobs, Metrics& metrics) : opts_(std::move(opts)), jobs_(jobs), metrics_(metrics) {
  std::vector<std::string> secrets;
  for (const auto& t : opts_.tenants) {
    identities_.push_back(tenant_identity(t));
    secrets.push_back(t.secret);
  }
  if (!opts_.tenants.empty()) {
    std::string key =
        opts_.read_token_key.empty() ? ReadTokens::key_from_secrets(std::move(secrets)) : opts_.read_token_key;
    read_tokens_.emplace(std::move(key), opts_.read_token_ttl);
  }
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
  Call call;
  call.req = std::move(req);
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
  add_cors_headers(opts_.cors, call.req, r);
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

// Every route, one line each: its name (metrics, logs), method, path (":id" is a stream id),
// handler, and whether it is open to anyone (health) or needs the caller's secret.
const Router::Route Router::kRoutes[] = {
    {"health", "GET", "health", &Router::health, Router::Access::open},
    {"metrics", "GET", "metrics", &Router::metrics, Router::Access::secret},
    {"models", "GET", "v1/models", &Router::models, Router::Access::secret},
    {"message", "POST", "v1/messages", &Router::message, Router::Access::secret},
    {"count_tokens", "POST", "v1/messages/count_tokens", &Router::count_tokens, Router::Access::secret},
    {"validate", "POST", "v1/messages/validate", &Router::validate, Router::Access::secret},
    {"start", "POST", "v1/messages/async", &Router::start, Router::Access::secret},
    {"list", "GET", "v1/messages/async", &Router::list, Router::Access::secret},
    {"stream", "GET", "v1/messages/async/:id/stream", &Router::observe, Router::Access::secret_or_token},
    {"status", "GET", "v1/messages/async/:id/status", &Router::status, Router::Access::secret_or_token},
    {"cancel", "POST", "v1/messages/async/:id/cancel", &Router::cancel, Router::Access::secret},
    {"delete", "DELETE", "v1/messages/async/:id/delete", &Router::remove, Router::Access::secret},
};

namespace {

// True when `segments` match `pattern` ("a/b/:id/c"); sets `id` to the ":id" segment.
bool path_matches(std::string_view pattern, const std::vector<std::string>& segments, std::string& id) {
  std::size_t i = 0;
  while (!pattern.empty()) {
    const auto slash = pattern.find('/');
    const std::string_view want = pattern.substr(0, slash);
    if (i >= segments.size()) return false;
    if (want == ":id") {
      id = segments[i];
    } else if (segments[i] != want) {
      return false;
    }
    ++i;
    pattern = slash == std::string_view::npos ? std::string_view{} : pattern.substr(slash + 1);
  }
  return i == segments.size();
}

}  // namespace

// The route for the call's path and method; nullptr when no path matches. A path that matches
// with another method only gives that route with `method_ok` false.
const Router::Route* Router::find_route(Call& call, bool& method_ok) const {
  const Route* path_match = nullptr;
  for (const Route& r : kRoutes) {
    if (!path_matches(r.path, call.segments, call.id)) continue;
    if (r.method == call.req.method) {
      method_ok = true;
      return &r;
    }
    if (path_match == nullptr) path_match = &r;
  }
  method_ok = false;
  return path_match;
}

std::optional<http::Response> Router::guard(Call& call) const {
  if (!opts_.tenants.empty()) return std::nullopt;  // the secret is the proof
  const std::string* host = call.req.header("host");
  auto refused = refused_host(opts_.origins, host);
  if (!refused) refused = refused_origin(opts_.origins, call.req.method, call.req.header("origin"), host);
  if (!refused) return std::nullopt;
  call.route = "forbidden";
  return error_response(make_error(Errc::forbidden, *refused));
}

std::optional<http::Response> Router::authenticate(Call& call) const {
  if (opts_.tenants.empty()) return std::nullopt;
  const std::string* auth = call.req.header("authorization");
  bool ok = false;
  for (std::size_t i = 0; i < opts_.tenants.size(); ++i) {  // every one compared: no early exit
    if (auth && constant_time_equal(*auth, opts_.tenants[i].secret)) {
      ok = true;
      call.owner = identities_[i];
      call.tenant = &opts_.tenants[i];
    }
  }
  if (ok) return std::nullopt;
  call.route = "unauthorized";
  return error_response(make_error(Errc::unauthorized, "Not authenticated"));
}

asio::awaitable<http::Response> Router::dispatch(Call& call) {
  auto target = parse_target(call.req.target, prefix_);
  if (!target) co_return error_response(target.error());
  call.url = target->url;
  call.segments = std::move(target->segments);
  if (auto preflight = cors_preflight(opts_.cors, call.req)) {  // before auth: browsers send no credentials
    call.route = "preflight";
    co_return std::move(*preflight);
  }
  bool method_ok = false;
  const Route* route = find_route(call, method_ok);
  const bool open = route != nullptr && route->access == Access::open;
  if (!open) {
    // The playground's files are public, but not to a rebinding page; "no such route" comes
    // after auth, so an unknown path without the secret is 401.
    if (auto refused = guard(call)) co_return std::move(*refused);
    if (auto page = web_asset(call)) {
      call.route = "web";
      co_return std::move(*page);
    }
    if (auto refused = authenticate(call)) {
      call.token_incarnation = route != nullptr && method_ok ? token_grant(call, *route) : std::nullopt;
      if (!call.token_incarnation) co_return std::move(*refused);
      call.route = std::string(route->name);
    }
  }
  if (route == nullptr) {
    call.route = "not_found";
    co_return error_response(make_error(Errc::route_not_found, ""));
  }
  call.route = std::string(route->name);
  if (!method_ok) co_return error_response(make_error(Errc::method_not_allowed, ""));
  if (route->path.find(":id") != std::string_view::npos) {
    if (!is_addressable_id(call.id)) {  // cannot exist; the answer stays valid JSON whatever its bytes
      co_return error_response(
          make_error(Errc::not_found, "Stream with message_id " + to_valid_utf8(call.id) + " not found"));
    }
    if (call.token_incarnation) {  // the token's holder reads the stream whoever owns it
      if (auto gone = co_await token_stream_gone(call, *call.token_incarnation)) co_return std::move(*gone);
    } else if (auto vis = co_await visible(call, call.id); !vis) {
      co_return error_response(vis.error());
    }
  }
  auto handled = (this->*(route->handler))(call);
  co_return co_await std::move(handled);
}

std::optional<std::uint32_t> Router::token_grant(const Call& call, const Route& route) const {
  if (route.access != Access::secret_or_token || !read_tokens_) return std::nullopt;
  const auto it = call.url.params().find("read_token");
  if (it == call.url.params().end()) return std::nullopt;
  const std::string token = (*it).value;
  return read_tokens_->check(token, call.id, std::chrono::system_clock::now());
}

asio::awaitable<std::optional<http::Response>> Router::token_stream_gone(const Call& call, std::uint32_t incarnation) {
  auto info = co_await jobs_.info(call.id);
  if (info && info->incarnation == incarnation) co_return std::nullopt;
  co_return error_response(make_error(Errc::not_found, "Stream with message_id " + call.id + " not found"));
}

Result<StartJob> Router::job_of(Call& call) const {
  auto req = parse_body(call.req);
  if (!req) return req.error();
  auto model = jobs_.models().resolve(req->model);
  if (!model) return model.error();
  if (auto takes = check_model_takes(*model.value(), *req); !takes) return takes.error();
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
  return job;
}

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
  auto prepared = job_of(call);
  if (!prepared) co_return error_response(prepared.error());
  StartJob job = std::move(prepared.value());
  job.id = id;
  if (const std::string* key = call.req.header("idempotency-key"); key && !key->empty()) {
    job.idempotency_key = *key;
    job.body_digest = std::to_string(fnv1a(call.req.body, id));
  }
  auto started = co_await jobs_.start(std::move(job));
  if (!started) co_return error_response(started.error());
  json::object body{{"message_id", started->id}, {"status", "pending"}, {"message", "Request initiated successfully"}};
  if (read_tokens_) {  // a capability to watch this job, for a page that must not hold the secret (§6)
    auto info = co_await jobs_.info(started->id);
    const std::uint32_t incarnation = info ? info->incarnation : 1;
    body["read_token"] = read_tokens_->issue(started->id, incarnation, std::chrono::system_clock::now());
  }
  co_return json_response(200, json::serialize(body));
}

asio::awaitable<http::Response> Router::observe(Call& call) {
  const std::string& id = call.id;
  std::uint64_t after = 0;
  std::uint32_t incarnation = 0;  // of the cursor resumed from (0: none, any incarnation)
  bool resumed = false;
  // The header wins: a browser sends it when its EventSource reconnects by itself, to the URL
  // (with the ?last_event_id= the page began from) it was opened with.
  std::optional<std::string> raw;
  if (const std::string* h = call.req.header("last-event-id"); h && !h->empty()) {
    raw = *h;
  } else if (auto it = call.url.params().find("last_event_id"); it != call.url.params().end() && !(*it).value.empty()) {
    raw = std::string((*it).value);
  }
  if (raw) {
    auto n = parse_event_id(*raw);
    if (!n) {
      co_return error_response(make_error(
          Errc::invalid_request,
          "Last-Event-ID must be an event id: N or N.I (a non-negative integer position, and the incarnation)"));
    }
    after = n->position;
    incarnation = n->incarnation;
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
  // A cursor of another incarnation of the id is refused (409) by the open itself: atomic with it.
  auto cursor = co_await jobs_.open(id, after, incarnation, call.req.executor);
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
  auto query = parse_list_query(call.url.params());
  if (!query) co_return error_response(query.error());
  ListQuery q = std::move(query.value());
  if (opts_.stream_scoping) q.owner = call.owner;
  const auto t0 = Clock::now();
  auto page = co_await jobs_.list(std::move(q));
  metrics_.broker_latency(micros_since(t0));
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

asio::awaitable<http::Response> Router::status(Call& call) {
  const std::string& id = call.id;
  const auto t0 = Clock::now();
  auto info = co_await jobs_.info(id);
  metrics_.broker_latency(micros_since(t0));
  if (!info) co_return error_response(info.error());
  co_return json_response(200, status_json(*info));
}

asio::awaitable<http::Response> Router::cancel(Call& call) {
  const std::string& id = call.id;
  const auto t0 = Clock::now();
  auto done = co_await jobs_.cancel(id);
  if (!done) co_return error_response(done.error());
  metrics_.cancel_latency(micros_since(t0));
  json::object body{{"message", "Stream cancelled successfully"}, {"message_id", id}};
  co_return json_response(200, json::serialize(body));
}

asio::awaitable<http::Response> Router::remove(Call& call) {
  const std::string& id = call.id;
  auto done = co_await jobs_.remove(id, Removal::tombstone);
  if (!done) co_return error_response(done.error());
  co_return json_response(200, "null");
}

asio::awaitable<http::Response> Router::message(Call& call) {
  auto prepared = job_of(call);
  if (!prepared) co_return error_response(prepared.error());
  StartJob job = std::move(prepared.value());
  const bool stream = job.request->stream;
  job.fold = !stream;
  auto started = co_await jobs_.start(std::move(job));
  if (!started) co_return error_response(started.error());
  auto cursor = co_await jobs_.open(started->id, 0, 0, call.req.executor);
  if (!cursor) co_return error_response(cursor.error());
  // The job's stream is internal: delete it once the reply is over (no tombstone: nobody holds its id).
  auto remove = [jobs = &jobs_, id = started->id, ex = call.req.executor] {
    spawn_detached(
        ex, [jobs, id]() -> asio::awaitable<void> { co_await jobs->remove(id, Removal::forget); },
        "synchronous reply's stream removal");
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
  } else if (auto takes = check_model_takes(*model.value(), *req); !takes) {
    failure = takes.error();
  }
  if (!failure) co_return json_response(200, R"({"valid":true,"errors":null})");
  if (!failure->detail.is_null()) co_return error_response(*failure);
  json::object body{{"valid", false}, {"errors", json::array{json::value(failure->explanation)}}};
  co_return json_response(400, json::serialize(body));
}

asio::awaitable<http::Response> Router::health(Call& /*call*/) {
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
  co_return json_response(broker_why ? 503 : 200, json::serialize(body));
}

asio::awaitable<http::Response> Router::metrics(Call& /*call*/) {
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
  co_return r;
}

asio::awaitable<http::Response> Router::models(Call& /*call*/) {
  json::array data;
  const Model* def = jobs_.models().default_model();
  for (const auto& m : jobs_.models().models()) {
    data.push_back(json::object{
        {"type", "model"}, {"id", m.name}, {"display_name", m.name}, {"engine", m.engine}, {"default", &m == def}});
  }
  json::value first = data.empty() ? json::value(nullptr) : data.front().as_object().at("id");
  json::value last = data.empty() ? json::value(nullptr) : data.back().as_object().at("id");
  json::object body{{"data", std::move(data)}, {"has_more", false}, {"first_id", first}, {"last_id", last}};
  co_return json_response(200, json::serialize(body));
}

}  // namespace spool
