// The `mock` engine (§7): deterministic echo of the last user message, for tests, demos and benchmarks;
// with an output format, a deterministic instance of its JSON schema instead.
#pragma once

#include "engine/engine.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <chrono>

namespace spool {

// Settings of one mock model.
struct MockOptions {
  std::chrono::milliseconds token_delay{20};
};

// Echoes the last user message word by word on the engine executor, never on a network thread.
class MockEngine final : public Engine {
 public:
  MockEngine(boost::asio::any_io_executor engine_executor, MockOptions opts);
  std::shared_ptr<EngineRun> start(std::shared_ptr<const ChatRequest> req, std::shared_ptr<EngineSink> sink) override;
  Result<std::int64_t> count_tokens(const ChatRequest& req) override;
  // The reply's text is then a JSON instance of the schema (schema_instance), instead of the echo.
  bool follows_output_format() const override { return true; }
  // Whether an instance of the schema fits schema_instance's limits.
  Status check_output_format(const OutputFormat& format) const override;

 private:
  boost::asio::any_io_executor ex_;
  MockOptions opts_;
};

// Splits `text` into mock tokens: words keeping their trailing whitespace; leading whitespace
// belongs to the first token. The tokens concatenate to `text`.
std::vector<std::string_view> mock_tokens(std::string_view text);

// Words (ASCII-whitespace separated) in every message text and the system prompt.
std::int64_t mock_input_tokens(const ChatRequest& req);

}  // namespace spool
