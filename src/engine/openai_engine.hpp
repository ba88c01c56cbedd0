// The `openai` engine (§7): any OpenAI-compatible /v1/chat/completions server (vLLM, Ollama,
// llama-server, LM Studio, OpenAI), streamed and translated into Spool's events.
#pragma once

#include "engine/engine.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <string>

namespace spool {

// Where and how to reach an upstream model server.
struct UpstreamOptions {
  std::string base_url;        // e.g. http://127.0.0.1:11434/v1 (the route is appended)
  std::string upstream_model;  // the model name sent upstream
  std::string api_key;         // empty: none
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds first_byte_timeout{120000};
  std::chrono::milliseconds idle_timeout{60000};
};

// Streams each job from the upstream on `ex` (an event loop; no thread per request).
// Cancelling a job closes its upstream request, so the upstream stops generating.
class OpenAiEngine final : public Engine {
 public:
  OpenAiEngine(boost::asio::any_io_executor ex, UpstreamOptions opts);
  std::shared_ptr<EngineRun> start(std::shared_ptr<const ChatRequest> req, std::shared_ptr<EngineSink> sink) override;
  // Upstream servers expose no standard tokenizer route: an invalid_request error that says so.
  Result<std::int64_t> count_tokens(const ChatRequest& req) override;

 private:
  boost::asio::any_io_executor ex_;
  UpstreamOptions opts_;
};

}  // namespace spool
