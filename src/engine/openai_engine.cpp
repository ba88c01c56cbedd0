#include "engine/openai_engine.hpp"

#include "engine/openai_protocol.hpp"
#include "engine/sse_parser.hpp"
#include "http/client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
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

asio::awaitable<void> stream_openai(UpstreamOptions opts, std::shared_ptr<const ChatRequest> req,
                                    std::shared_ptr<EngineSink> sink, std::shared_ptr<http::ClientCancel> cancel) {
  http::ClientRequest cr;
  cr.method = "POST";
  std::string base = opts.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  cr.url = base + "/chat/completions";
  cr.headers = {{"Content-Type", "application/json"}, {"Accept", "text/event-stream"}};
  if (!opts.api_key.empty()) cr.headers.emplace_back("Authorization", "Bearer " + opts.api_key);
  cr.body = boost::json::serialize(openai_request_body(*req, opts.upstream_model));
  cr.connect_timeout = opts.connect_timeout;
  cr.first_byte_timeout = opts.first_byte_timeout;
  cr.idle_timeout = opts.idle_timeout;

  OpenAiStream reply(*sink, req->stop_sequences);
  SseParser parser([&](SseEvent&& e) { return reply.on_data(e.data); });
  int status = 0;
  std::string error_body;
  auto on_head = [&](const http::ClientResponseHead& h) { status = h.status; };
  auto on_data = [&](std::string_view d) {
    if (sink->stopped()) return false;
    if (status >= 400) {
      error_body.append(d.substr(0, kMaxErrorBody - std::min(kMaxErrorBody, error_body.size())));
      return error_body.size() < kMaxErrorBody;
    }
    return parser.feed(d);
  };
  const Status done = co_await http::stream_request(std::move(cr), on_head, on_data, cancel);
  if (sink->stopped() || reply.done()) co_return;
  if (status >= 400) {
    sink->fail(make_error(Errc::upstream, fmt::format("upstream {} answered HTTP {}: {}", base, status,
                                                      upstream_error_message(error_body))));
    co_return;
  }
  if (!done) {
    sink->fail(done.error());
    co_return;
  }
  reply.on_end();
}

}  // namespace

OpenAiEngine::OpenAiEngine(asio::any_io_executor ex, UpstreamOptions opts)
    : ex_(std::move(ex)), opts_(std::move(opts)) {}

std::shared_ptr<EngineRun> OpenAiEngine::start(std::shared_ptr<const ChatRequest> req,
                                               std::shared_ptr<EngineSink> sink) {
  auto run = std::make_shared<UpstreamRun>();
  asio::co_spawn(ex_, stream_openai(opts_, std::move(req), std::move(sink), run->handle()), asio::detached);
  return run;
}

Result<std::int64_t> OpenAiEngine::count_tokens(const ChatRequest&) {
  return make_error(Errc::invalid_request,
                    "count_tokens needs the model's tokenizer, and an OpenAI-compatible upstream does not expose one");
}

}  // namespace spool
