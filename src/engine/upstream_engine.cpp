#include "engine/upstream_engine.hpp"

#include "core/redact.hpp"
#include "core/spawn.hpp"
#include "engine/anthropic_protocol.hpp"
#include "engine/openai_protocol.hpp"
#include "http/client.hpp"

#include <boost/json/serialize.hpp>

#include <fmt/format.h>

namespace spool {
namespace asio = boost::asio;

namespace {

constexpr std::size_t kMaxErrorBody = std::size_t{64} * 1024;

class UpstreamRun final : public EngineRun {
 public:
  UpstreamRun() : cancel_(std::make_shared<http::ClientCancel>()) {}
  void cancel() override { cancel_->cancel(); }
  const std::shared_ptr<http::ClientCancel>& handle() const { return cancel_; }

 private:
  std::shared_ptr<http::ClientCancel> cancel_;
};

asio::awaitable<void> stream_reply(UpstreamOptions opts, UpstreamProtocol protocol,
                                   std::shared_ptr<const ChatRequest> req, std::shared_ptr<EngineSink> sink,
                                   std::shared_ptr<http::ClientCancel> cancel,
                                   std::shared_ptr<UpstreamEngine::Reachability> reach) {
  // The route goes at the end of the base URL's path, before its query (e.g. ?api-version=...).
  const std::size_t query = opts.base_url.find('?');
  std::string base = opts.base_url.substr(0, query);
  while (!base.empty() && base.back() == '/') base.pop_back();
  http::ClientRequest cr;
  cr.method = "POST";
  cr.url = base + protocol.route + (query == std::string::npos ? "" : opts.base_url.substr(query));
  cr.headers = {{"Content-Type", "application/json"}, {"Accept", "text/event-stream"}};
  for (auto& h : protocol.headers(opts)) cr.headers.push_back(std::move(h));
  if (!req->traceparent.empty()) {  // the caller's trace continues upstream (W3C Trace Context)
    cr.headers.emplace_back("traceparent", req->traceparent);
    if (!req->tracestate.empty()) cr.headers.emplace_back("tracestate", req->tracestate);
  }
  cr.body = protocol.body(opts, *req);
  cr.connect_timeout = opts.connect_timeout;
  cr.first_byte_timeout = opts.first_byte_timeout;
  cr.idle_timeout = opts.idle_timeout;

  std::unique_ptr<UpstreamReply> reply = protocol.reply(*sink, *req);
  reply->set_limits(opts.limits);
  SseParser parser([&](SseEvent&& e) { return reply->on_event(e); }, opts.limits.max_event_bytes);
  int status = 0;
  std::string error_body;
  auto on_head = [&](const http::ClientResponseHead& h) {
    status = h.status;
    std::lock_guard lk(reach->mu);
    reach->failure.reset();
  };
  auto on_data = [&](std::string_view d) {
    if (sink->stopped()) return false;
    if (status >= 400) {
      error_body.append(d.substr(0, kMaxErrorBody - std::min(kMaxErrorBody, error_body.size())));
      return error_body.size() < kMaxErrorBody;
    }
    return parser.feed(d);
  };
  const Status done = co_await http::stream_request(std::move(cr), on_head, on_data, cancel);
  if (sink->stopped() || reply->done()) co_return;
  const std::string where = redact_url(base);
  if (status >= 400) {
    const std::string why = upstream_error_message(error_body);
    sink->fail(make_error(Errc::upstream, fmt::format("upstream {} answered HTTP {}: {}", where, status, why)));
    co_return;
  }
  if (!parser.overflow().empty()) {
    sink->fail(make_error(Errc::upstream,
                          fmt::format("upstream {} sent {} (upstream_max_event_bytes)", where, parser.overflow())));
    co_return;
  }
  if (!done) {
    if (status == 0) {  // no answer at all: the upstream is unreachable (until one request gets through)
      std::lock_guard lk(reach->mu);
      reach->failure = done.error().explanation;
    }
    sink->fail(done.error());
    co_return;
  }
  reply->on_end();
}

}  // namespace

UpstreamProtocol openai_protocol() {
  UpstreamProtocol p;
  p.route = "/chat/completions";
  p.headers = [](const UpstreamOptions& o) {
    std::vector<std::pair<std::string, std::string>> h;
    if (!o.api_key.empty()) h.emplace_back("Authorization", "Bearer " + o.api_key);
    return h;
  };
  p.body = [](const UpstreamOptions& o, const ChatRequest& r) {
    return boost::json::serialize(openai_request_body(r, o.upstream_model));
  };
  p.reply = [](EngineSink& sink, const ChatRequest& r) -> std::unique_ptr<UpstreamReply> {
    return std::make_unique<OpenAiStream>(sink, r.stop_sequences);
  };
  return p;
}

UpstreamProtocol anthropic_protocol() {
  UpstreamProtocol p;
  p.route = "/v1/messages";
  p.signs_thinking = true;
  p.headers = [](const UpstreamOptions& o) {
    std::vector<std::pair<std::string, std::string>> h{{"anthropic-version", "2023-06-01"}};
    if (!o.api_key.empty()) h.emplace_back("x-api-key", o.api_key);
    return h;
  };
  p.body = [](const UpstreamOptions& o, const ChatRequest& r) {
    return boost::json::serialize(anthropic_request_body(r, o.upstream_model));
  };
  p.reply = [](EngineSink& sink, const ChatRequest&) -> std::unique_ptr<UpstreamReply> {
    return std::make_unique<AnthropicStream>(sink);
  };
  return p;
}

UpstreamEngine::UpstreamEngine(asio::any_io_executor ex, UpstreamOptions opts, UpstreamProtocol protocol)
    : ex_(std::move(ex)), opts_(std::move(opts)), protocol_(std::move(protocol)) {}

std::shared_ptr<EngineRun> UpstreamEngine::start(std::shared_ptr<const ChatRequest> req,
                                                 std::shared_ptr<EngineSink> sink) {
  auto run = std::make_shared<UpstreamRun>();
  auto task = stream_reply(opts_, protocol_, std::move(req), sink, run->handle(), reach_);
  spawn_detached(ex_, std::move(task), "upstream reply", [sink](const std::string& why) {
    sink->fail(make_error(Errc::upstream, "the upstream reply could not be processed: " + why));
  });
  return run;
}

std::optional<std::string> UpstreamEngine::unready_reason() const {
  std::lock_guard lk(reach_->mu);
  return reach_->failure;
}

Result<std::int64_t> UpstreamEngine::count_tokens(const ChatRequest&) {
  return make_error(Errc::invalid_request,
                    "count_tokens needs the model's tokenizer, and an upstream model server does not expose one");
}

}  // namespace spool
