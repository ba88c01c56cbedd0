// Engines that stream from a model server over HTTP (§7 `openai` and `anthropic`). One runner
// serves both; a protocol says how to ask and how to read the streamed reply.
#pragma once

#include "engine/engine.hpp"
#include "engine/upstream_limits.hpp"
#include "engine/upstream_reply.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace spool {

// Where and how to reach an upstream model server.
struct UpstreamOptions {
  std::string base_url;        // e.g. http://127.0.0.1:11434/v1 (the protocol appends its route)
  std::string upstream_model;  // the model name sent upstream
  std::string api_key;         // empty: none
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds first_byte_timeout{120000};
  std::chrono::milliseconds idle_timeout{60000};
  UpstreamLimits limits;  // longest SSE line/event and delta accepted from the upstream
};

// An upstream wire protocol.
struct UpstreamProtocol {
  std::string route;  // appended to base_url, e.g. "/chat/completions"
  // Headers (besides Content-Type and Accept) and the JSON body for `req`.
  std::function<std::vector<std::pair<std::string, std::string>>(const UpstreamOptions&)> headers;
  std::function<std::string(const UpstreamOptions&, const ChatRequest&)> body;
  std::function<std::unique_ptr<UpstreamReply>(EngineSink&, const ChatRequest&)> reply;
  bool signs_thinking = false;  // the upstream signs its thinking blocks (anthropic)
};

// The OpenAI chat-completions protocol (vLLM, Ollama, llama-server, LM Studio, OpenAI).
UpstreamProtocol openai_protocol();
// The Anthropic Messages protocol.
UpstreamProtocol anthropic_protocol();

// Streams each job from the upstream on `ex` (an event loop; no thread per request).
// Cancelling a job closes its upstream request, so the upstream stops generating.
class UpstreamEngine final : public Engine {
 public:
  UpstreamEngine(boost::asio::any_io_executor ex, UpstreamOptions opts, UpstreamProtocol protocol);
  std::shared_ptr<EngineRun> start(std::shared_ptr<const ChatRequest> req, std::shared_ptr<EngineSink> sink) override;
  // Upstream servers expose no standard tokenizer route: an invalid_request error that says so.
  Result<std::int64_t> count_tokens(const ChatRequest& req) override;
  // Why the last request could not reach the upstream, until one does again.
  std::optional<std::string> unready_reason() const override;
  // The protocol sends the format on (anthropic: output_config, openai: response_format); the
  // upstream enforces it.
  bool follows_output_format() const override { return true; }
  bool signs_thinking() const override { return protocol_.signs_thinking; }

  // Whether the upstream answered lately (shared with the requests in flight).
  struct Reachability {
    mutable std::mutex mu;
    std::optional<std::string> failure;
  };

 private:
  boost::asio::any_io_executor ex_;
  UpstreamOptions opts_;
  UpstreamProtocol protocol_;
  std::shared_ptr<Reachability> reach_ = std::make_shared<Reachability>();
};

}  // namespace spool
